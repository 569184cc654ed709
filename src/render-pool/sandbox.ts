import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { launchBrowser } from './launch.js';

export type SandboxMode = 'auto' | 'on' | 'off';

export interface SandboxDecision {
  on: boolean;
  /** Why it is off (for the start log), or how it was confirmed. */
  reason: string;
}

export interface SandboxProbe {
  chromePath: string;
  env: Record<string, string>;
  /** The node's user id: Chromium refuses its sandbox as root. */
  uid: number;
}

/**
 * Whether Chromium runs with its own sandbox. It cannot as root, and as another user it needs the kernel to let
 * it create user namespaces (Debian's Chromium ships no setuid helper), which containers often forbid (Docker's
 * default seccomp profile does). Rather than guess from /proc/sys, a sandboxed browser is launched once: if it
 * comes up, the sandbox works here. `auto` falls back to no sandbox with a warning; `on` refuses to start.
 */
export async function decideSandbox(mode: SandboxMode, probe: SandboxProbe, log: Logger): Promise<SandboxDecision> {
  if (mode === 'off') return { on: false, reason: 'SHOTFLEET_CHROME_SANDBOX=off' };
  const refused = (why: string) =>
    new Error(
      `SHOTFLEET_CHROME_SANDBOX=on, but Chromium's sandbox cannot run: ${why}. Run the node as a non-root user on a kernel ` +
        'that allows unprivileged user namespaces (in a container: a seccomp profile that allows them; see the README, Security), ' +
        'or set SHOTFLEET_CHROME_SANDBOX=auto to run without it',
    );
  if (probe.uid === 0) {
    if (mode === 'on') throw refused('the node runs as root');
    return { on: false, reason: 'the node runs as root, where Chromium refuses its sandbox' };
  }
  try {
    const browser = await launchBrowser(probe.chromePath, { sandbox: true, env: probe.env });
    await browser.close();
    return { on: true, reason: 'a sandboxed Chromium started' };
  } catch (err) {
    log.debug({ err }, 'sandboxed Chromium did not start');
    const cause = (await chromiumComplaint(probe)) ?? (err instanceof Error ? err.message : String(err)).split('\n')[0];
    if (mode === 'on') throw refused(cause);
    return { on: false, reason: `a sandboxed Chromium did not start (${cause})` };
  }
}

/**
 * Over a pipe puppeteer only sees the browser go away; Chromium says why on stderr ("No usable sandbox!",
 * "Failed to move to new namespace"…). Started once more on its own, its sandbox complaint is the reason to log.
 */
async function chromiumComplaint(probe: SandboxProbe): Promise<string | undefined> {
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), `shotfleet-sandbox-probe-${process.pid}-`));
  try {
    return await complaintOf(probe, profile);
  } finally {
    await fs.rm(profile, { recursive: true, force: true }).catch(() => undefined);
  }
}

function complaintOf(probe: SandboxProbe, profile: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let stderr = '';
    const child = spawn(probe.chromePath, ['--headless', '--disable-gpu', '--no-first-run', `--user-data-dir=${profile}`, '--dump-dom', 'about:blank'], {
      env: probe.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stderr.on('data', (d) => (stderr += d));
    const done = () => {
      clearTimeout(timer);
      const line = stderr.split('\n').find((l) => /sandbox|namespace/i.test(l));
      resolve(
        line
          ?.replace(/^\[[^\]]*\]\s*/, '')
          .trim()
          .slice(0, 300),
      );
    };
    child.on('error', done);
    child.on('close', done);
  });
}
