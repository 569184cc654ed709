export interface Series {
  name: string;
  color: string;
  /** One value per x label; null where there is none. */
  values: (number | null)[];
}

export interface Panel {
  title: string;
  unit: string;
  series: Series[];
  logScale?: boolean;
}

const panelWidth = 360;
const panelHeight = 240;
const margin = { top: 48, right: 16, bottom: 40, left: 56 };
const legendEntryWidth = 220;

/** Line charts side by side over the same categorical x axis, as a standalone SVG document. */
export function lineChartsSvg(title: string, xLabels: string[], panels: Panel[]): string {
  const width = panels.length * panelWidth;
  const names = [...new Map(panels.flatMap((p) => p.series).map((s) => [s.name, s.color])).entries()];
  // The legend wraps: as many 220 px entries a row as the panels are wide.
  const perRow = Math.max(1, Math.floor((width - 16) / legendEntryWidth));
  const height = panelHeight + 40 + Math.ceil(names.length / perRow) * 20;
  const parts = panels.map((p, i) => panelSvg(p, xLabels, i * panelWidth));
  const legend = names
    .map(([name, color], i) => {
      const x = 16 + (i % perRow) * legendEntryWidth;
      const y = panelHeight + 36 + Math.floor(i / perRow) * 20;
      return `<g transform="translate(${x},${y})"><rect width="14" height="4" y="-4" fill="${color}"/><text x="20" font-size="12">${escapeXml(name)}</text></g>`;
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="16" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>
${parts.join('\n')}
${legend}
</svg>
`;
}

function panelSvg(panel: Panel, xLabels: string[], offsetX: number): string {
  const w = panelWidth - margin.left - margin.right;
  const h = panelHeight - margin.top - margin.bottom;
  const values = panel.series.flatMap((s) => s.values).filter((v): v is number => v !== null && Number.isFinite(v));
  const max = Math.max(1e-9, ...values);
  const min = panel.logScale ? Math.max(1e-3, Math.min(...values.filter((v) => v > 0))) : 0;
  const scaleY = (v: number) =>
    panel.logScale ? h - ((Math.log10(Math.max(v, min)) - Math.log10(min)) / Math.max(1e-9, Math.log10(max) - Math.log10(min))) * h : h - (v / max) * h;
  const scaleX = (i: number) => (xLabels.length === 1 ? w / 2 : (i / (xLabels.length - 1)) * w);
  const ticks = panel.logScale ? logTicks(min, max) : [0, max / 2, max];
  const grid = ticks
    .map(
      (t) =>
        `<line x1="0" x2="${w}" y1="${scaleY(t)}" y2="${scaleY(t)}" stroke="#ddd"/><text x="-6" y="${scaleY(t) + 4}" font-size="10" text-anchor="end">${fmt(t)}</text>`,
    )
    .join('');
  const xAxis = xLabels.map((l, i) => `<text x="${scaleX(i)}" y="${h + 16}" font-size="10" text-anchor="middle">${escapeXml(l)}</text>`).join('');
  const lines = panel.series
    .map((s) => {
      const points = s.values.map((v, i) => (v === null || !Number.isFinite(v) ? null : `${scaleX(i)},${scaleY(v)}`)).filter(Boolean);
      const dots = points.map((p) => `<circle cx="${p!.split(',')[0]}" cy="${p!.split(',')[1]}" r="3" fill="${s.color}"/>`).join('');
      return `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${points.join(' ')}"/>${dots}`;
    })
    .join('');
  return `<g transform="translate(${offsetX + margin.left},${margin.top})">
<text x="0" y="-10" font-size="12">${escapeXml(panel.title)} (${escapeXml(panel.unit)}${panel.logScale ? ', log' : ''})</text>
${grid}<line x1="0" x2="0" y1="0" y2="${h}" stroke="#888"/><line x1="0" x2="${w}" y1="${h}" y2="${h}" stroke="#888"/>
${xAxis}${lines}
</g>`;
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    const t = 10 ** e;
    if (t >= min / 1.0001 && t <= max * 1.0001) ticks.push(t);
  }
  return ticks.length > 0 ? ticks : [min, max];
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toPrecision(2));
const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
