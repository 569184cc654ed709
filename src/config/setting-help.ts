import { settingNames, settingsSchema, type Settings } from './schema.js';
import { envName, flagName, rolesOf, settingDocs, type Role } from './setting-docs.js';

/** Settings an operator sets: benchmark switches are left out of help and the README. */
const documented = () => settingNames.filter((key) => !settingDocs[key].benchmarkOnly);

/** A setting's default in words: the schema's own value, or how it is derived, or – for none. */
export function defaultText(key: keyof Settings): string {
  const doc = settingDocs[key];
  if (doc.derivedDefault) return doc.derivedDefault;
  const value = (settingsSchema.parse({}) as Record<string, unknown>)[key];
  if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) return '–';
  return String(value);
}

/** The options part of `shotfleet serve|hub --help`: the role's own settings, each with its variable, default and meaning. */
export function settingsHelp(role: Role): string {
  return documented()
    .filter((key) => rolesOf(key).includes(role))
    .map((key) => {
      const doc = settingDocs[key];
      const name = `  ${flagName(key)} (${envName(key)})`;
      const secret = doc.secret ? ` Prefer the variable: a flag's value shows in ps.` : '';
      return `${name}\n      ${doc.meaning}. Default: ${defaultText(key)}.${secret}`;
    })
    .join('\n');
}

/** The README's configuration table: one row per setting, the same text `--help` prints. */
export function settingsMarkdownTable(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const rows = documented().map((key) => {
    const roles = rolesOf(key);
    const who = roles.length === 2 ? 'node, hub' : roles[0] === 'hub' ? 'hub' : 'node';
    return `| \`${envName(key)}\` | ${cell(defaultText(key))} | ${who} | ${cell(settingDocs[key].meaning)} |`;
  });
  return ['| env (flag: `--name-in-kebab-case`) | default | read by | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
