import { KnownDevices, type Viewport } from 'puppeteer-core';

/** The size of a request that names neither viewport nor device; every pooled page's window opens at it. */
export const defaultWindow = { width: 1280, height: 800 } as const;

/** The viewport of a request that names neither viewport nor device. */
export const defaultViewport = { ...defaultWindow, deviceScaleFactor: 1, isMobile: false } as const;

/** The options that size the page (a subset of RenderOptions, named here so options.ts can import the defaults). */
export interface ViewportOptions {
  device?: string;
  viewport?: { width: number; height: number; deviceScaleFactor: number; isMobile: boolean };
}

/**
 * The viewport a request renders at, device presets included: resolved here once, so the pixel budget, the
 * admission's cost class and the emulation all see the same size (a device's scale factor counts too).
 */
export function effectiveViewport(options: ViewportOptions): Viewport & { deviceScaleFactor: number } {
  const device = options.device ? KnownDevices[options.device as keyof typeof KnownDevices] : undefined;
  if (device) return { ...device.viewport, deviceScaleFactor: device.viewport.deviceScaleFactor ?? 1 };
  const v = { ...defaultViewport, ...options.viewport };
  return { width: v.width, height: v.height, deviceScaleFactor: v.deviceScaleFactor, isMobile: v.isMobile, hasTouch: v.isMobile };
}
