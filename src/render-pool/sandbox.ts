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
    const cause = (err instanceof Error ? err.message : String(err)).split('\n').find((l) => /sandbox|namespace/i.test(l)) ?? String(err).split('\n')[0];
    log.debug({ err }, 'sandboxed Chromium did not start');
    if (mode === 'on') throw refused(cause.trim());
    return { on: false, reason: `a sandboxed Chromium did not start (${cause.trim()})` };
  }
}
