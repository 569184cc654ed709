import fs from 'node:fs';

interface Rule {
  names: string[];
  action: string;
  args?: unknown[];
  includes?: unknown;
  excludes?: unknown;
  comment?: string;
}
interface Profile {
  defaultAction: string;
  syscalls: Rule[];
}

/** What Chromium's sandbox needs beyond moby's default profile, for a process without capabilities. */
export const chromiumSandboxSyscalls = ['chroot', 'clone', 'unshare'];

/**
 * The kit's profile must be moby's default unchanged plus exactly one unconditional rule allowing the sandbox's
 * syscalls: anything else would widen what a container may do without saying so.
 */
export function checkSeccompProfile(kitFile: string, mobyFile: string): string {
  const kit = JSON.parse(fs.readFileSync(kitFile, 'utf8')) as Profile;
  const moby = JSON.parse(fs.readFileSync(mobyFile, 'utf8')) as Profile;
  const { syscalls: kitRules, ...kitRest } = kit;
  const { syscalls: mobyRules, ...mobyRest } = moby;
  if (JSON.stringify(kitRest) !== JSON.stringify(mobyRest)) throw new Error("the kit's profile changes moby's top-level settings");
  if (JSON.stringify(kitRules.slice(0, mobyRules.length)) !== JSON.stringify(mobyRules)) {
    throw new Error(`the kit's profile does not start with moby's ${mobyRules.length} rules unchanged (a newer moby profile? regenerate it)`);
  }
  const added = kitRules.slice(mobyRules.length);
  if (added.length !== 1) throw new Error(`the kit adds ${added.length} rules, not 1`);
  const [rule] = added;
  const { comment: _comment, ...shape } = rule;
  const expected = { names: chromiumSandboxSyscalls, action: 'SCMP_ACT_ALLOW' };
  if (JSON.stringify({ ...shape, names: [...shape.names].sort() }) !== JSON.stringify(expected)) {
    throw new Error(`the added rule is ${JSON.stringify(shape)}, not ${JSON.stringify(expected)}`);
  }
  return `${mobyRules.length} rules of moby's + {${chromiumSandboxSyscalls.join(', ')}: allow}`;
}
