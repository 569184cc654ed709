import { KnownDevices } from 'puppeteer-core';

/**
 * How big one image may be. Memory follows device pixels (an 8192×40000 PNG took ~5 GB at peak), and the
 * encoders have their own ceilings: webp cannot encode a side over 16383 px (Chromium then answers with bytes
 * that are no image), jpeg over 65535.
 */
export interface PixelBudget {
  /** Device pixels (width × height after deviceScaleFactor) of one image: SHOTFLEET_MAX_PIXELS. */
  maxPixels: number;
}

export const formatSideLimit: Record<'png' | 'jpeg' | 'webp', number> = { png: Number.POSITIVE_INFINITY, jpeg: 65535, webp: 16383 };

export type ImageFormat = keyof typeof formatSideLimit;

/** The parts of a request that decide its image's size before anything renders. */
export interface SizeRequest {
  format: ImageFormat;
  viewport?: { width: number; height: number; deviceScaleFactor: number };
  device?: string;
  clip?: { width: number; height: number };
  fullPage: boolean;
  selector?: string;
}

export interface SizeIssue {
  path: string;
  message: string;
}

const devicePx = (css: number, scale: number) => Math.ceil(css * scale);

/** The viewport a request renders at: its own, a device preset's, or the default. */
export function requestedViewport(o: Pick<SizeRequest, 'viewport' | 'device'>): { width: number; height: number; deviceScaleFactor: number } {
  if (o.viewport) return o.viewport;
  const preset = o.device ? KnownDevices[o.device as keyof typeof KnownDevices]?.viewport : undefined;
  if (preset) return { width: preset.width, height: preset.height, deviceScaleFactor: preset.deviceScaleFactor ?? 1 };
  return { width: 1280, height: 800, deviceScaleFactor: 1 };
}

/**
 * What can be told before rendering: the viewport's or the clip's image over the budget or the format's side
 * limit, and (fullPage) a width over the side limit. A selector's box and a full page's height are only known
 * during the render (fitToBudget).
 */
export function knownSizeIssues(o: SizeRequest, budget: PixelBudget): SizeIssue[] {
  const viewport = requestedViewport(o);
  const scale = viewport.deviceScaleFactor;
  const side = formatSideLimit[o.format];
  const issues: SizeIssue[] = [];
  const check = (path: string, width: number, height: number | undefined) => {
    const w = devicePx(width, scale);
    const h = height === undefined ? undefined : devicePx(height, scale);
    if (w > side || (h !== undefined && h > side)) {
      issues.push({
        path,
        message: `the image would be ${w}×${h ?? '…'} device px; ${o.format} allows at most ${side} px a side: lower the size or deviceScaleFactor, or use png`,
      });
    } else if (h !== undefined && w * h > budget.maxPixels) {
      issues.push({
        path,
        message: `the image would be ${w}×${h} = ${w * h} device px, over SHOTFLEET_MAX_PIXELS (${budget.maxPixels}): lower the size or deviceScaleFactor`,
      });
    }
  };
  if (o.clip) check('clip', o.clip.width, o.clip.height);
  else if (o.fullPage) check('viewport', viewport.width, undefined);
  else if (!o.selector) check(o.device && !o.viewport ? 'device' : 'viewport', viewport.width, viewport.height);
  return issues;
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * A region known only during the render (a full page, an element's box) cut so its image fits: at most
 * `maxHeight` CSS px tall, each side within the format's limit, and within the pixel budget (the height gives
 * way first, as a full page's would). `truncated` when anything was cut.
 */
export function fitToBudget(box: Box, scale: number, format: ImageFormat, budget: PixelBudget, maxHeight: number): { box: Box; truncated: boolean } {
  const side = formatSideLimit[format];
  // The most CSS px whose device px (rounded up) stay within `limit`: floor(⌊limit⌋ / scale) × scale ≤ ⌊limit⌋.
  const cssWithin = (limit: number) => Math.max(1, Math.floor(Math.floor(limit) / scale));
  const width = Math.min(box.width, cssWithin(side), cssWithin(budget.maxPixels / devicePx(1, scale)));
  const rowPixels = devicePx(width, scale);
  const height = Math.min(box.height, maxHeight, cssWithin(side), cssWithin(budget.maxPixels / rowPixels));
  return { box: { x: box.x, y: box.y, width, height }, truncated: width < box.width || height < box.height };
}
