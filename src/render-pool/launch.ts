import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';
import { withTimeout } from '../async/timeout.js';
import { policyBrowserArgs, sandboxArgs } from '../policy/index.js';

/**
 * Flags for a headless Chromium on a server with no internet: the background-networking family stops
 * Chrome from flooding refused connections on a machine with no way out, and the renderer limits keep one tab's site
 * isolation from spawning a process per iframe origin beyond what 2 cores can carry.
 */
export const chromeArgs = [
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-breakpad',
  '--disable-domain-reliability',
  '--disable-client-side-phishing-detection',
  // WebUIOmniboxPopup and WebUIOmniboxAimPopup: Chromium preloads its omnibox popup (two top-chrome renderers, ~1.5 s of CPU
  // each) at every launch; a headless node never shows it.
  // SpareRendererForSitePerProcess: Chromium keeps one spare renderer process, for one browser context. Every slot has a
  // context of its own, so each navigation found the spare made for another slot's context, killed it and started one
  // for its own: a renderer process started and thrown away per render, ~0.1 s of CPU each
  // (test/isolation.test.ts counts the renderer processes of a node rendering one site over and over).
  '--disable-features=Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions,WebUIOmniboxPopup,WebUIOmniboxAimPopup,SpareRendererForSitePerProcess',
  '--metrics-recording-only',
  '--mute-audio',
  '--hide-scrollbars',
  '--font-render-hinting=none',
  '--force-color-profile=srgb',
];

/**
 * No first tab: the pool opens its own windows, and the tab Chromium opens at launch kept a renderer process (~0.15 s
 * of CPU to start, and its memory) for nothing. A headless browser stays up with no window open. Not among chromeArgs:
 * a launch with it must not wait for a first page (waitForInitialPage below).
 */
const noFirstTab = '--no-startup-window';

export interface LaunchedBrowser {
  browser: Browser;
  pid: number;
  userDataDir: string;
  /** Closes the browser (killing it if it does not answer) and removes its profile. */
  close(): Promise<void>;
}

export interface LaunchOptions {
  /** Chromium's own sandbox (see sandbox.ts for when it can run). */
  sandbox: boolean;
  /** Chromium's whole environment: without it, it would inherit the node's, secrets included (chromeEnvironment). */
  env: Record<string, string>;
  /**
   * How long one CDP call may hang before puppeteer fails it. Longer than any request's deadline: a render stuck
   * in a call is ended by its deadline (a 504, the page torn down), never by this.
   */
  protocolTimeoutMs?: number;
  /** More Chromium flags, after the node's own: for benchmarks that measure a flag (bench/cpu-levers.ts). */
  extraArgs?: string[];
}

/** util-linux's setpriv (essential on Debian): runs a program that gets SIGKILL the moment its parent dies. */
const setprivPath = '/usr/bin/setpriv';

/**
 * Launches Chromium over a pipe, not a websocket: when the node dies, even by SIGKILL, the pipe closes and
 * Chromium exits on its own. That orderly exit takes a second or more under load, with helper processes
 * lingering; started through `setpriv --pdeathsig KILL`, the browser is killed with the node instead, and its
 * zygotes, renderers and utilities see their browser gone and exit with it.
 */
export async function launchBrowser(chromePath: string, opts: LaunchOptions): Promise<LaunchedBrowser> {
  const userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), `shotfleet-chrome-${process.pid}-`));
  // puppeteer turns Chromium's popup blocker off; a page clicking target=_blank links in a loop then
  // opens windows faster than they can be closed and starves every render in the browser.
  const args = puppeteer
    .defaultArgs({
      headless: true,
      userDataDir,
      args: [...chromeArgs, noFirstTab, ...sandboxArgs(opts.sandbox), ...policyBrowserArgs, ...(opts.extraArgs ?? [])],
    })
    .filter((arg) => arg !== '--disable-popup-blocking');
  const killedWithNode = await fs.access(setprivPath, fsConstants.X_OK).then(
    () => true,
    () => false,
  );
  const browser = await puppeteer.launch({
    ...(killedWithNode ? { executablePath: setprivPath, args: ['--pdeathsig', 'KILL', chromePath, ...args] } : { executablePath: chromePath, args }),
    env: opts.env,
    ignoreDefaultArgs: true,
    // noFirstTab: there is no first page to wait for.
    waitForInitialPage: false,
    pipe: true,
    defaultViewport: null,
    // The node handles its own signals and closes browsers during its drain.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    protocolTimeout: opts.protocolTimeoutMs ?? 120_000,
  });
  const pid = browser.process()?.pid ?? -1;
  return {
    browser,
    pid,
    userDataDir,
    async close() {
      const proc = browser.process();
      const closed = browser.close().catch(() => undefined);
      await withTimeout(closed, 5000, () => undefined);
      if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await fs.rm(userDataDir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
