import { PNG } from 'pngjs';

/**
 * Whether the image's fonts cover the world's major scripts, judged by pixels: each letter is drawn in its own
 * cell, next to a cell holding a private-use code point no font has, which Chromium draws as its .notdef glyph
 * (a box, or nothing, depending on the first font). A letter whose cell is pixel-for-pixel that reference, or
 * blank, has no font. A control row of other private-use code points must all match the reference, so the check
 * is shown able to see missing glyphs.
 */
export const scripts: Record<string, string[]> = {
  Thai: ['ก', 'ข', 'ค', 'ง', 'จ', 'ฉ'],
  Devanagari: ['क', 'ख', 'ग', 'घ', 'च', 'छ'],
  Arabic: ['ب', 'ت', 'ث', 'ج', 'ح', 'خ'],
  Hebrew: ['א', 'ב', 'ג', 'ד', 'ה', 'ו'],
  Korean: ['가', '나', '다', '라', '마', '바'],
  Chinese: ['中', '文', '字', '体', '测', '试'],
};
const control = ['\u{E001}', '\u{E002}', '\u{E003}', '\u{E004}', '\u{E005}', '\u{E006}'];
const notdef = '\u{E000}';

export const cell = 48;
const rows = [...Object.entries(scripts), ['control', control] as [string, string[]]];
export const pageSize = { width: cell * 7, height: cell * rows.length };

/** One row per script: the .notdef reference cell first, then the letters. */
export function scriptsPage(): string {
  const cells = rows.map(([, letters]) => [notdef, ...letters].map((l) => `<span>${l}</span>`).join('')).join('<br>');
  return `<!doctype html><meta charset="utf-8"><style>
    body { margin: 0; background: #fff; color: #000 }
    span { display: inline-block; width: ${cell}px; height: ${cell}px; font-size: 32px; line-height: ${cell}px;
           text-align: center; overflow: hidden; vertical-align: top }
  </style><body>${cells}</body>`;
}

export interface ScriptVerdict {
  script: string;
  /** Letters drawn as the .notdef reference. */
  boxes: number;
  /** Letters that left the cell blank. */
  blank: number;
  letters: number;
}

export function judgeScripts(png: Buffer): ScriptVerdict[] {
  const image = PNG.sync.read(png);
  if (image.width < pageSize.width || image.height < pageSize.height) {
    throw new Error(`the screenshot is ${image.width}×${image.height}, smaller than the ${pageSize.width}×${pageSize.height} page`);
  }
  const cellPixels = (row: number, col: number): Buffer => {
    const out = Buffer.alloc(cell * cell * 4);
    for (let y = 0; y < cell; y++) {
      const from = ((row * cell + y) * image.width + col * cell) * 4;
      image.data.copy(out, y * cell * 4, from, from + cell * 4);
    }
    return out;
  };
  const inked = (pixels: Buffer) => pixels.some((v, i) => i % 4 !== 3 && v < 128);
  return rows.map(([script, letters], row) => {
    const box = cellPixels(row, 0);
    let boxes = 0;
    let blank = 0;
    letters.forEach((_, i) => {
      const pixels = cellPixels(row, i + 1);
      if (pixels.equals(box)) boxes++;
      else if (!inked(pixels)) blank++;
    });
    return { script, boxes, blank, letters: letters.length };
  });
}
