/**
 * `npm run test:image`: builds the image with podman and runs it for real — a node and a hub from it, HAProxy
 * from the config the image writes, under the kit's seccomp profile as a cluster would run them — then stops them
 * with SIGTERM. Not part of `npm test`: it needs podman (as root) and takes minutes. Only loopback is used.
 *
 * SHOTFLEET_MOBY_SECCOMP: moby's default seccomp profile (profiles/seccomp/default.json of the moby/profiles
 * module, which Docker and containerd's RuntimeDefault derive from), to show what it does to the sandbox and that
 * the kit's profile is it plus one rule. Default /var/tmp/shotfleet-base/moby-default-seccomp.json; absent → skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { decodePng } from '../helpers/images.js';
import { freePort, repoRoot } from '../helpers/processes.js';
import { checkSeccompProfile } from './seccomp-profile.js';
import { containerState, limitFlags, podman, podmanOk } from './podman.js';
import { judgeScripts, pageSize, scriptsPage } from './script-glyphs.js';

const image = 'localhost/shotfleet:test-image';
const kitProfile = path.join(repoRoot, 'deploy/seccomp/shotfleet-chromium.json');
const mobyProfile = process.env.SHOTFLEET_MOBY_SECCOMP ?? '/var/tmp/shotfleet-base/moby-default-seccomp.json';
const run = `sf-image-${process.pid}`;
const token = 'image-test-client-token';
const hubToken = 'image-test-hub-token';
const graceMs = 10_000;
const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

/** As a cluster runs the node: no capabilities, no privilege gain, the kit's seccomp profile. */
const confined = ['--cap-drop=ALL', '--security-opt', 'no-new-privileges', '--security-opt', `seccomp=${kitProfile}`];

let passed = 0;
let failed = 0;
const started: string[] = [];
const cleanups: (() => void)[] = [];

async function step(name: string, fn: () => Promise<string | undefined>): Promise<void> {
  const t0 = performance.now();
  try {
    const said = await fn();
    passed++;
    console.log(`ok   ${name} (${((performance.now() - t0) / 1000).toFixed(1)} s)${said ? `: ${said}` : ''}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  }
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const getJson = async (url: string, headers: Record<string, string> = {}) => {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

async function shoot(base: string, body: Record<string, unknown>): Promise<{ status: number; bytes: Buffer; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${base}/screenshot`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(90_000),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`POST /screenshot answered ${res.status}: ${bytes.toString('utf8').slice(0, 300)}`);
  return { status: res.status, bytes, ms: performance.now() - t0 };
}

async function startContainer(name: string, flags: string[], command: string[] = []): Promise<void> {
  await podmanOk(['run', '-d', '--name', name, ...limitFlags, ...flags, image, ...command]);
  started.push(name);
}

const envFlags = (env: Record<string, string>) => Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);

/** SIGTERM, as the runtime sends it: the container must exit 0 by itself within `boundMs`. */
async function stopWithSigterm(name: string, boundMs: number): Promise<string> {
  const t0 = performance.now();
  await podmanOk(['kill', '--signal', 'TERM', name]);
  const state = await until('the container to exit', async () => ((await containerState(name)).running ? undefined : containerState(name)), boundMs);
  const ms = performance.now() - t0;
  check(state.exitCode === 0, `${name} exited ${state.exitCode}, not 0`);
  const top = await podman(['top', name]);
  check(top.code !== 0, `${name} still has processes:\n${top.stdout}`);
  return `exit 0 after ${(ms / 1000).toFixed(1)} s, nothing left running`;
}

async function logsOf(name: string): Promise<string> {
  const r = await podman(['logs', name]);
  return r.stdout + r.stderr;
}

/** As the runtime judges it: unhealthy only after the HEALTHCHECK's --retries (3) consecutive failures. */
async function healthcheck(name: string): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt++) if ((await podman(['healthcheck', 'run', name])).code === 0) return true;
  return false;
}

async function main(): Promise<void> {
  const site = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><body style="margin:0;background:rgb(0,128,255)"></body>');
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => site.close());
  const sitePort = (site.address() as { port: number }).port;

  await step('base image (test/image/make-base.sh)', async () => {
    const r = spawnSync('bash', [path.join(repoRoot, 'test/image/make-base.sh')], { encoding: 'utf8' });
    check(r.status === 0, `make-base.sh exited ${r.status}: ${r.stderr.slice(-800)}`);
    return r.stdout.trim().split('\n').pop();
  });

  await step('podman build', async () => {
    const flags = ['build', '--format', 'docker', '--network=host', ...limitFlags, '-t', image];
    // A TLS-inspecting proxy's CA reaches npm in the build stage only (the Dockerfile's NODE_EXTRA_CA_CERTS).
    const ca = process.env.NODE_EXTRA_CA_CERTS;
    if (ca && fs.existsSync(ca)) flags.push('--build-arg', 'NODE_EXTRA_CA_CERTS=/tmp/build-ca.pem', '--volume', `${ca}:/tmp/build-ca.pem:ro`);
    const r = await podman([...flags, repoRoot]);
    check(r.code === 0, `build failed:\n${(r.stdout + r.stderr).slice(-2000)}`);
    const size = Number((await podmanOk(['image', 'inspect', '--format', '{{.Size}}', image])).trim());
    return `${(size / 2 ** 20).toFixed(0)} MiB`;
  });

  await step('image metadata: non-root user, LANG, OCI labels, a HEALTHCHECK', async () => {
    const [config] = JSON.parse(await podmanOk(['image', 'inspect', image])) as [
      { Config: { User: string; Env: string[]; Labels: Record<string, string> }; Healthcheck?: { Test: string[] } },
    ];
    check(config.Config.User === 'shotfleet', `User is "${config.Config.User}"`);
    check(config.Config.Env.includes('LANG=C.UTF-8'), `Env lacks LANG=C.UTF-8: ${config.Config.Env.join(' ')}`);
    check(
      config.Config.Labels['org.opencontainers.image.version'] === version,
      `label version ${config.Config.Labels['org.opencontainers.image.version']} ≠ ${version}`,
    );
    check(config.Config.Labels['org.opencontainers.image.title'] === 'shotfleet', 'no org.opencontainers.image.title');
    check((config.Healthcheck?.Test ?? []).join(' ').includes('/livez'), 'no HEALTHCHECK on /livez');
    const node = (await podmanOk(['run', '--rm', ...limitFlags, image, 'node', '-p', "process.version + ' ' + (process.release.lts || 'not LTS')"])).trim();
    check(!node.endsWith('not LTS'), `Node ${node} is not an LTS release`);
    return `Node ${node}, ${Object.keys(config.Config.Labels).filter((l) => l.startsWith('org.opencontainers')).length} OCI labels`;
  });

  await step('runtime image holds no bench, tests, sources or dev tools', async () => {
    const listing = (
      await podmanOk(['run', '--rm', ...limitFlags, image, 'sh', '-c', 'ls -A /app; echo --; ls -A /app/dist; echo --; ls -A /app/dist/src/api'])
    ).trim();
    const [app, dist, api] = listing.split('\n--\n').map((part) => part.split('\n'));
    check(JSON.stringify(app.sort()) === JSON.stringify(['dist', 'node_modules', 'package.json']), `/app holds ${app.join(' ')}`);
    check(JSON.stringify(dist) === JSON.stringify(['src']), `/app/dist holds ${dist.join(' ')} (bench or tests compiled in?)`);
    check(!api.some((f) => f.startsWith('update-readme')), 'the README updater is in the image');
    const devPackages = ['typescript', 'vitest', '@biomejs/biome', 'tsx', 's3rver', 'puppeteer', 'kubernetes-models'];
    const present = await podmanOk([
      'run',
      '--rm',
      ...limitFlags,
      image,
      'sh',
      '-c',
      `${devPackages.map((p) => `test -e node_modules/${p}/package.json && echo ${p}`).join('; ')}; true`,
    ]);
    check(present.trim() === '', `dev packages in the image: ${present.trim().split('\n').join(', ')}`);
    return `/app: ${app.join(' ')}`;
  });

  const hubPort = await freePort();
  const statsSocketPort = await freePort();
  const hubName = `${run}-hub`;
  await step('hub role: starts as the non-root user and answers /livez', async () => {
    await startContainer(
      hubName,
      [
        '--network=host',
        ...confined,
        ...envFlags({
          SHOTFLEET_HOST: '127.0.0.1',
          SHOTFLEET_PORT: String(hubPort),
          SHOTFLEET_TOKEN: token,
          SHOTFLEET_HUB_TOKEN: hubToken,
          // The kit shares a unix socket between the two containers of a pod; here HAProxy is the host's.
          SHOTFLEET_HAPROXY_SOCKET: `127.0.0.1:${statsSocketPort}`,
        }),
      ],
      ['node', 'dist/src/cli/main.js', 'hub'],
    );
    await until('the hub to answer /livez', async () => ((await getJson(`http://127.0.0.1:${hubPort}/livez`)).status === 200 ? true : undefined), 60_000);
    const uid = (await podmanOk(['exec', hubName, 'id', '-u'])).trim();
    check(uid === '10001', `the hub runs as uid ${uid}`);
    return `uid ${uid}, port ${hubPort}`;
  });

  const haproxyPort = await freePort();
  let haproxy: ChildProcess | undefined;
  await step('HAProxy from the config the image writes (haproxy-config --hub): haproxy -c, then running', async () => {
    const cfg = await podmanOk([
      'run',
      '--rm',
      '--network=host',
      ...limitFlags,
      ...confined,
      ...envFlags({ SHOTFLEET_TOKEN: token, SHOTFLEET_HUB_TOKEN: hubToken }),
      image,
      'node',
      'dist/src/cli/main.js',
      'haproxy-config',
      '--hub',
      `http://127.0.0.1:${hubPort}`,
      '--bind',
      `127.0.0.1:${haproxyPort}`,
      '--stats-bind',
      `127.0.0.1:${await freePort()}`,
    ]);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-image-')), 'haproxy.cfg');
    fs.writeFileSync(file, cfg);
    const c = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
    check(c.status === 0, `haproxy -c: ${c.stdout}${c.stderr}`);
    haproxy = spawn('haproxy', ['-db', '-f', file], { stdio: 'ignore' });
    cleanups.push(() => haproxy?.kill('SIGTERM'));
    await until('HAProxy to listen', () => fetch(`http://127.0.0.1:${haproxyPort}/`).then(() => true), 10_000);
    return `${cfg.split('\n').filter((l) => /^\s*server /.test(l)).length} server slots`;
  });

  const nodePort = await freePort();
  const node = `http://127.0.0.1:${nodePort}`;
  const nodeName = `${run}-node`;
  await step("node role under the kit's seccomp profile, no capabilities: ready with Chromium's sandbox on", async () => {
    const t0 = performance.now();
    await startContainer(nodeName, [
      '--network=host',
      ...confined,
      ...envFlags({
        SHOTFLEET_HOST: '127.0.0.1',
        SHOTFLEET_PORT: String(nodePort),
        SHOTFLEET_PAGES: '2',
        SHOTFLEET_CHROME_SANDBOX: 'on',
        SHOTFLEET_TOKEN: token,
        SHOTFLEET_HUB_TOKEN: hubToken,
        SHOTFLEET_HUB_URL: `http://127.0.0.1:${hubPort}`,
        SHOTFLEET_ADVERTISE_URL: node,
        SHOTFLEET_ALLOW_HOSTS: '127.0.0.1',
        SHOTFLEET_SHUTDOWN_GRACE_MS: String(graceMs),
      }),
    ]);
    const status = await until(
      '/status 200',
      async () => {
        const s = await getJson(`${node}/status`);
        return s.status === 200 ? s.body : undefined;
      },
      // Minutes, not seconds: a loaded 2-core machine starts Chromium's sandbox probe and pool slowly.
      300_000,
    );
    const readyMs = performance.now() - t0;
    check((status.chrome as { sandbox: boolean }).sandbox === true, `/status says chrome.sandbox ${JSON.stringify(status.chrome)}`);
    const users = (await podmanOk(['top', nodeName, 'user', 'comm'])).trim().split('\n').slice(1);
    check(
      users.length > 2 && users.every((l) => l.trim().startsWith('shotfleet') || l.trim().startsWith('10001')),
      `processes not all the node user:\n${users.join('\n')}`,
    );
    return `ready ${(readyMs / 1000).toFixed(1)} s after start, sandbox on, ${users.length} processes all uid 10001`;
  });

  await step('a screenshot from the node', async () => {
    const shot = await shoot(node, { url: `http://127.0.0.1:${sitePort}/`, viewport: { width: 320, height: 200 } });
    const png = decodePng(shot.bytes);
    check(png.width === 320 && png.height === 200, `${png.width}×${png.height}`);
    check(png.at(160, 100).slice(0, 3).join() === '0,128,255', `pixel ${png.at(160, 100).join()}`);
    return `${shot.bytes.length} B PNG in ${Math.round(shot.ms)} ms`;
  });

  await step('fonts: Thai, Devanagari, Arabic, Hebrew, Korean, Chinese draw glyphs, not boxes (by pixels)', async () => {
    const shot = await shoot(node, { html: scriptsPage(), viewport: pageSize, format: 'png' });
    const verdicts = judgeScripts(shot.bytes);
    const control = verdicts.find((v) => v.script === 'control')!;
    check(
      control.boxes === control.letters,
      `the control row (private-use code points) drew ${control.boxes}/${control.letters} boxes: the check cannot see boxes`,
    );
    const bad = verdicts.filter((v) => v.script !== 'control' && (v.boxes > 0 || v.blank > 0));
    check(bad.length === 0, bad.map((v) => `${v.script}: ${v.boxes} boxes, ${v.blank} blank of ${v.letters}`).join('; '));
    return `${verdicts
      .filter((v) => v !== control)
      .map((v) => `${v.script} ${v.letters - v.boxes - v.blank}/${v.letters}`)
      .join(', ')} glyphs; control row ${control.boxes}/${control.letters} seen as missing`;
  });

  await step('through HAProxy: the hub routed the node, a screenshot comes back', async () => {
    await until(
      'the hub to route the node',
      async () => {
        const nodes = (await getJson(`http://127.0.0.1:${hubPort}/nodes`, { authorization: `Bearer ${hubToken}` })).body as unknown as { routed: boolean }[];
        return nodes.some((n) => n.routed) ? true : undefined;
      },
      60_000,
    );
    const shot = await until(
      'a 200 through HAProxy',
      () => shoot(`http://127.0.0.1:${haproxyPort}`, { url: `http://127.0.0.1:${sitePort}/`, viewport: { width: 320, height: 200 } }),
      30_000,
    );
    return `${shot.bytes.length} B PNG`;
  });

  await step('HEALTHCHECK: healthy for the node and the hub on their ports', async () => {
    check(await healthcheck(nodeName), 'node unhealthy');
    check(await healthcheck(hubName), 'hub unhealthy');
    return undefined;
  });

  await step("HEALTHCHECK picks each role's default port (node 3000, hub 4000), and fails when nothing answers", async () => {
    const isolated = ['--network=none', ...confined];
    const names = { node: `${run}-node-default`, hub: `${run}-hub-default`, idle: `${run}-idle` };
    await startContainer(names.node, [...isolated, ...envFlags({ SHOTFLEET_CHROME_SANDBOX: 'on' })]);
    await startContainer(names.hub, [...isolated, ...envFlags({ SHOTFLEET_TOKEN: token })], ['node', 'dist/src/cli/main.js', 'hub']);
    await startContainer(names.idle, isolated, ['sleep', '120']);
    await until('the node to be healthy', async () => ((await healthcheck(names.node)) ? true : undefined), 60_000);
    await until('the hub to be healthy', async () => ((await healthcheck(names.hub)) ? true : undefined), 60_000);
    check(!(await healthcheck(names.idle)), 'a container with nothing listening is healthy');
    for (const name of Object.values(names)) await podman(['rm', '-f', '-t', '0', name]);
    return undefined;
  });

  if (fs.existsSync(mobyProfile)) {
    await step("seccomp: the kit's profile is moby's default plus one rule (clone, unshare, chroot)", async () => checkSeccompProfile(kitProfile, mobyProfile));
    await step("seccomp: under moby's default profile a node with SHOTFLEET_CHROME_SANDBOX=on refuses to start", async () => {
      const name = `${run}-moby`;
      await startContainer(name, [
        '--network=none',
        '--cap-drop=ALL',
        '--security-opt',
        'no-new-privileges',
        '--security-opt',
        `seccomp=${mobyProfile}`,
        ...envFlags({ SHOTFLEET_CHROME_SANDBOX: 'on' }),
      ]);
      const state = await until('the node to exit', async () => ((await containerState(name)).running ? undefined : containerState(name)), 90_000);
      const logs = await logsOf(name);
      check(state.exitCode !== 0, 'it started');
      const said = /sandbox cannot run: ([^.]*)/.exec(logs)?.[1] ?? '';
      check(said !== '', `exit ${state.exitCode} without the sandbox message:\n${logs.slice(-600)}`);
      return `exit ${state.exitCode}: "${said.slice(0, 90)}"`;
    });
  } else {
    console.log(`skip seccomp comparison with moby's default: no profile at ${mobyProfile} (set SHOTFLEET_MOBY_SECCOMP)`);
  }

  await step('SIGTERM to the node with a render in flight: it is answered, then drain, exit 0, nothing left', async () => {
    const inFlight = shoot(node, { url: `http://127.0.0.1:${sitePort}/`, viewport: { width: 320, height: 200 }, delay: 2000 });
    await until(
      'the render to hold a page',
      async () => (((await getJson(`${node}/status`)).body.pages as { inUse: number }).inUse > 0 ? true : undefined),
      10_000,
    );
    const stopped = stopWithSigterm(nodeName, graceMs + 5000);
    const answer = await inFlight;
    const said = await stopped;
    const logs = await logsOf(nodeName);
    check(logs.includes('"msg":"deregistered from the hub"'), 'the node did not deregister');
    check(logs.includes('"msg":"stopped"'), 'no "stopped" in the log');
    return `render answered ${answer.status}; ${said}`;
  });

  await step('SIGTERM to the hub: exit 0, nothing left', () => stopWithSigterm(hubName, 10_000));
}

main()
  .catch(() => undefined)
  .finally(async () => {
    for (const name of started) await podman(['rm', '-f', '-t', '0', name]);
    for (const c of cleanups) c();
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed > 0 || passed === 0 ? 1 : 0);
  });
