import type { Logger } from '../../src/log/logger.js';
import { capture, type CaptureResult } from '../../src/render/capture.js';
import type { RenderPage } from '../../src/render-pool/page-slot.js';
import type { RenderOptions } from '../../src/request/options.js';

/** The node's capture() as the benches drive it: a deadline of its own, a request nobody abandons, one set of caps. */
export function benchCapture(slot: RenderPage, options: RenderOptions, log: Logger, timeoutMs = 30_000): Promise<CaptureResult> {
  const ctx = { deadlineAt: Date.now() + timeoutMs, signal: new AbortController().signal, maxPageHeight: 20_000, budget: { maxPixels: 100_000_000 }, log };
  return capture(slot, options, ctx);
}
