import type { CDPSession } from 'puppeteer-core';
import { ShotError } from '../errors/shot-error.js';
import type { Box } from '../request/pixel-budget.js';

/**
 * The box (border box, CSS px of the document) of the first element matching `selector`, found and measured by
 * the browser's DOM agent: the page's own script never answers. A page may override querySelector or
 * getBoundingClientRect to report any size (3000×60000 for a 50 px element was seen); layout cannot lie.
 */
export async function elementBox(cdp: CDPSession, selector: string): Promise<Box> {
  try {
    const { root } = await cdp.send('DOM.getDocument', { depth: 0 });
    const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector }).catch(() => {
      throw new ShotError('invalid_request', `selector "${selector}" is not a valid CSS selector`, { field: 'selector' });
    });
    if (!nodeId) throw new ShotError('selector_not_found', `no element matches selector "${selector}"`, { selector });
    const model = await cdp.send('DOM.getBoxModel', { nodeId }).catch(() => null);
    if (!model) throw new ShotError('selector_not_found', `the element matching "${selector}" has no visible size`, { selector });
    // Quads are relative to the viewport; the capture's clip is in document coordinates.
    const { cssVisualViewport } = await cdp.send('Page.getLayoutMetrics');
    const xs = [0, 2, 4, 6].map((i) => model.model.border[i]);
    const ys = [1, 3, 5, 7].map((i) => model.model.border[i]);
    const box = {
      x: Math.min(...xs) + cssVisualViewport.pageX,
      y: Math.min(...ys) + cssVisualViewport.pageY,
      width: Math.max(...xs) - Math.min(...xs),
      height: Math.max(...ys) - Math.min(...ys),
    };
    if (box.width < 1 || box.height < 1) throw new ShotError('selector_not_found', `the element matching "${selector}" has no visible size`, { selector });
    return box;
  } finally {
    // DOM.getDocument switched the DOM agent on: left on, it would stream every later DOM change to the node.
    await cdp.send('DOM.disable').catch(() => undefined);
  }
}
