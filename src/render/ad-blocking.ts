import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { HTTPRequest } from 'puppeteer-core';

/** Decides which requests are ads or trackers. */
export interface AdBlocker {
  blocks(request: HTTPRequest, pageUrl: string | undefined): boolean;
}

let loading: Promise<AdBlocker> | undefined;

/**
 * The ad and tracker lists of @ghostery/trackerdb: a serialized @ghostery/adblocker engine shipped inside the
 * package (dist/trackerdb.engine), read from disk on the first blockAds render (~15 ms) and kept. Nothing is
 * fetched at run time.
 */
export function loadAdBlocker(): Promise<AdBlocker> {
  loading ??= (async () => {
    // Imported here, not at the top: nodes that never block ads do not load the engine's code at start.
    const { default: loadTrackerDBEngine, AdblockerRequest } = await import('@ghostery/trackerdb');
    const require = createRequire(import.meta.url);
    const enginePath = require.resolve('@ghostery/trackerdb').replace(/dist\/cjs\/index\.js$/, 'dist/trackerdb.engine');
    const { engine } = await loadTrackerDBEngine(new Uint8Array(await readFile(enginePath)));
    return {
      blocks(request, pageUrl) {
        const url = request.url();
        if (!url.startsWith('http')) return false;
        // The page itself is never an ad: a client asked for it by name.
        if (request.isNavigationRequest() && request.frame()?.parentFrame() === null) return false;
        const match = engine.match(
          AdblockerRequest.fromRawDetails({ url, type: request.resourceType() as never, sourceUrl: request.frame()?.url() || pageUrl || '' }),
        );
        return match.match && !match.exception;
      },
    };
  })();
  loading.catch(() => (loading = undefined));
  return loading;
}
