import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';

/** The hub token from a mounted secret of its own, apart from the clients' token (deploy/kubernetes). */
describe('SHOTFLEET_HUB_TOKEN_FILE', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-hub-token-'));
  const write = (name: string, text: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  it('reads the hub token from the file (env or flag), apart from the client token', () => {
    const hubFile = write('hub', 'hub-secret\n');
    const clientFile = write('client', 'client-secret\n');
    const config = loadConfig('hub', {}, { SHOTFLEET_HUB_TOKEN_FILE: hubFile, SHOTFLEET_TOKEN_FILE: clientFile });
    expect(config.HUB_TOKEN).toBe('hub-secret');
    expect(config.TOKEN).toBe('client-secret');
    expect(loadConfig('hub', { 'hub-token-file': hubFile }, {}).HUB_TOKEN).toBe('hub-secret');
  });

  it('without a hub token, the hub token is the client token, from SHOTFLEET_TOKEN_FILE too', () => {
    const clientFile = write('client-only', 'client-secret\n');
    expect(loadConfig('hub', {}, { SHOTFLEET_TOKEN_FILE: clientFile }).HUB_TOKEN).toBe('client-secret');
  });

  it('refuses a missing or empty file, and the hub token given twice, naming the variable', () => {
    const empty = write('empty', '\n');
    expect(() => loadConfig('hub', {}, { SHOTFLEET_HUB_TOKEN_FILE: path.join(dir, 'absent') })).toThrow(/SHOTFLEET_HUB_TOKEN_FILE.*cannot read/);
    expect(() => loadConfig('hub', {}, { SHOTFLEET_HUB_TOKEN_FILE: empty })).toThrow(/SHOTFLEET_HUB_TOKEN_FILE.*empty/);
    expect(() => loadConfig('hub', {}, { SHOTFLEET_HUB_TOKEN_FILE: write('x', 'x'), SHOTFLEET_HUB_TOKEN: 'y' })).toThrow(
      /SHOTFLEET_HUB_TOKEN_FILE.*SHOTFLEET_HUB_TOKEN.*not both/,
    );
  });
});
