import { describe, expect, it } from 'vitest';
import type { CDPSession, Page } from 'puppeteer-core';
import { createEmulationState, defaultEmulation, type Emulation } from '../src/render-pool/slot-emulation.js';

/** A page and CDP session that record what is sent; the real calls are covered by the render tests in real Chromium. */
function recordingTarget(fail?: string) {
  const sent: string[] = [];
  const record = (name: string) => async () => {
    sent.push(name);
    if (name === fail) throw new Error(`${name} failed`);
  };
  const page = {
    setViewport: record('setViewport'),
    setJavaScriptEnabled: record('setJavaScriptEnabled'),
    setRequestInterception: record('setRequestInterception'),
  };
  const cdp = { send: async (method: string) => record(method)() };
  const target = { page: page as unknown as Page, cdp: cdp as unknown as CDPSession, browserContextId: 'ctx', browserUserAgent: async () => 'Chromium/1' };
  return { target, sent };
}

const plain: Emulation = { ...defaultEmulation };
const dark: Emulation = { ...plain, media: { type: '', features: [{ name: 'prefers-color-scheme', value: 'dark' }] }, userAgent: { userAgent: 'bot/1' } };

describe("a page slot's emulation state", () => {
  it('sends the viewport on a new page, then nothing for a render that wants what the page already has', async () => {
    const { target, sent } = recordingTarget();
    const state = createEmulationState(target);
    await state.set(plain);
    expect(sent).toEqual(['setViewport', 'Emulation.setDeviceMetricsOverride']);
    sent.length = 0;
    await state.set({ ...plain, viewport: { ...plain.viewport }, media: { type: '', features: [] } });
    expect(sent).toEqual([]);
  });

  it('sends only the settings that differ, and puts them back when the next render does not ask for them', async () => {
    const { target, sent } = recordingTarget();
    const state = createEmulationState(target);
    await state.set(plain);
    sent.length = 0;
    await state.set(dark);
    expect(sent.sort()).toEqual(['Emulation.setEmulatedMedia', 'Emulation.setUserAgentOverride']);
    sent.length = 0;
    await state.set(dark);
    expect(sent).toEqual([]);
    await state.set(plain);
    expect(sent.sort()).toEqual(['Emulation.setEmulatedMedia', 'Emulation.setUserAgentOverride']);
    expect(state.current()).toEqual(plain);
  });

  it('forgets a setting whose call failed, so the next render sends it again', async () => {
    const { target, sent } = recordingTarget('Emulation.setTimezoneOverride');
    const state = createEmulationState(target);
    await expect(state.set({ timezone: 'Asia/Tokyo' })).rejects.toThrow(/failed/);
    expect(state.current().timezone).toBeUndefined();
    sent.length = 0;
    await expect(state.set({ timezone: '' })).rejects.toThrow(/failed/);
    expect(sent).toEqual(['Emulation.setTimezoneOverride']);
  });

  it('records interception before the call returns: requests made meanwhile are already held for a verdict', async () => {
    const { target } = recordingTarget();
    const state = createEmulationState(target);
    const pending = state.set({ interception: true });
    expect(state.current().interception).toBe(true);
    await pending;
  });
});
