import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shoot } from './helpers/node-client.js';
import { startShotfleet, type RunningProcess } from './helpers/processes.js';

/**
 * A host the operator allows by name skips the address checks, but it must still resolve: a name that does not
 * (`.invalid` never does) is the client's 502 navigation_failed, never a 200 picture of the policy proxy's own
 * error text — for the page itself, over http and https, and for a redirect to it.
 */

const unresolvable = 'no-such-host.invalid';
let origin: http.Server;
let port = 0;
let node: RunningProcess;

beforeAll(async () => {
  origin = http.createServer((_req, res) => {
    res.writeHead(302, { location: `http://${unresolvable}/after-redirect` }).end();
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  port = (origin.address() as net.AddressInfo).port;
  node = await startShotfleet('serve', {
    SHOTFLEET_PAGES: '1',
    SHOTFLEET_ALLOW_HOSTS: `localhost,${unresolvable}`,
    SHOTFLEET_TIMEOUT_MS: '20000',
  });
});

afterAll(async () => {
  await node?.stop();
  origin?.closeAllConnections();
  await new Promise((resolve) => origin?.close(resolve));
});

describe('a host allowed by SHOTFLEET_ALLOW_HOSTS that does not resolve', () => {
  it.each([`http://${unresolvable}/`, `https://${unresolvable}/`])('%s is 502 navigation_failed saying the name does not resolve', async (url) => {
    const { status, json } = await shoot(node.url, { url, viewport: { width: 200, height: 100 } }, { timeoutMs: 60_000 });
    expect(status).toBe(502);
    expect(json?.error?.code).toBe('navigation_failed');
    expect(json?.error?.message).toContain(`"${unresolvable}" does not resolve`);
  });

  it('a redirect to it is 502 navigation_failed saying the name does not resolve', async () => {
    const { status, json } = await shoot(node.url, { url: `http://localhost:${port}/start`, viewport: { width: 200, height: 100 } }, { timeoutMs: 60_000 });
    expect(status).toBe(502);
    expect(json?.error?.code).toBe('navigation_failed');
    expect(json?.error?.message).toContain(`"${unresolvable}" does not resolve`);
  });
});
