import type { HTTPResponse, Page } from 'puppeteer-core';
import { ShotError } from '../errors/shot-error.js';

/**
 * Follows the HTTP status of the page's own document through its redirects: the last main-frame navigation
 * response wins. Reported as it arrives, so that a render failing later (a timeout, a missing selector) can
 * still say what the target answered. Returns the function that stops watching.
 */
export function watchDocumentStatus(page: Page, onStatus: (status: number) => void): () => void {
  const onResponse = (response: HTTPResponse) => {
    const request = response.request();
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) onStatus(response.status());
  };
  page.on('response', onResponse);
  return () => void page.off('response', onResponse);
}

/** failOnHttpStatus: true means any status of 400 or above; a list names the statuses. */
export function checkTargetStatus(failOn: boolean | number[], status: number | undefined): void {
  if (status === undefined || failOn === false) return;
  const fails = failOn === true ? status >= 400 : failOn.includes(status);
  if (fails) {
    throw new ShotError('target_http_error', `the page answered HTTP ${status}, which failOnHttpStatus refuses; nothing was captured or stored`, { status });
  }
}
