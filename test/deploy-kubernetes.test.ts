import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadConfig } from '../src/config/load.js';
import { settingNames } from '../src/config/schema.js';
import { exportedMetricNames, metricNamesIn } from './helpers/exported-metrics.js';
import { checkHaproxyConfig } from './helpers/haproxy.js';
import { validateAgainstApiSchema } from './helpers/kubernetes-schemas.js';
import { cliEntry, repoRoot, startShotfleet, type RunningProcess } from './helpers/processes.js';

/** Manifests are untyped YAML, checked field by field below. */
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML, walked by the checks below
type Manifest = Record<string, any>;

const dir = path.join(repoRoot, 'deploy/kubernetes');
const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
const manifests: Manifest[] = files.flatMap((file) =>
  YAML.parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return { ...(doc.toJS() as Manifest), file };
  }),
);
const find = (kind: string, name: string): Manifest => {
  const found = manifests.find((m) => m.kind === kind && m.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in deploy/kubernetes`);
  return found;
};

const nodeDeployment = find('Deployment', 'shotfleet-node');
const nodePod = nodeDeployment.spec.template;
const nodeContainer = nodePod.spec.containers.find((c: Manifest) => c.name === 'node');
const edge = find('StatefulSet', 'shotfleet-edge');
const edgeContainers: Manifest[] = [...edge.spec.template.spec.initContainers, ...edge.spec.template.spec.containers];
const container = (name: string) => edgeContainers.find((c) => c.name === name)!;

/** A container's literal env values (valueFrom entries left out). */
function envOf(c: Manifest): Record<string, string> {
  return Object.fromEntries((c.env ?? []).filter((e: Manifest) => 'value' in e).map((e: Manifest) => [e.name, String(e.value)]));
}

/** The container port a probe or Service names (by name or number). */
function portNumber(c: Manifest, port: string | number): number {
  if (typeof port === 'number') return port;
  const found = (c.ports ?? []).find((p: Manifest) => p.name === port);
  if (!found) throw new Error(`container ${c.name} has no port named ${port}`);
  return found.containerPort;
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

const quantity = (q: string): number => {
  const units: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, m: 1e-3 };
  const m = /^([\d.]+)(Ki|Mi|Gi|m)?$/.exec(String(q));
  if (!m) throw new Error(`cannot read quantity ${q}`);
  return Number(m[1]) * (m[2] ? units[m[2]] : 1);
};

describe('deploy/kubernetes manifests', () => {
  it('parse, and each has apiVersion, kind and name; kustomization lists every file', () => {
    const kinds = manifests.map((m) => `${m.kind}/${m.metadata?.name}`).sort();
    expect(kinds).toEqual(
      [
        'Deployment/shotfleet-node',
        'PodDisruptionBudget/shotfleet-edge',
        'PodDisruptionBudget/shotfleet-node',
        'ScaledObject/shotfleet-node',
        'Secret/shotfleet-hub-token',
        'Secret/shotfleet-token',
        'Service/shotfleet',
        'Service/shotfleet-hub',
        'Service/shotfleet-node',
        'StatefulSet/shotfleet-edge',
      ].sort(),
    );
    for (const m of manifests) expect(typeof m.apiVersion, `${m.file}: apiVersion`).toBe('string');
    const kustomization = YAML.parse(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'));
    expect([...kustomization.resources].sort()).toEqual([...files].sort());
  });

  it.each(manifests.map((m) => [`${m.file}: ${m.kind}/${m.metadata?.name}`, m]))("%s passes the API's own schema", (_name, manifest) => {
    expect(() => validateAgainstApiSchema(manifest)).not.toThrow();
  });

  it('node: readiness on /status and liveness on /livez, on the port the node listens on', () => {
    const port = Number(envOf(nodeContainer).SHOTFLEET_PORT ?? 3000);
    expect(nodeContainer.readinessProbe.httpGet.path).toBe('/status');
    expect(nodeContainer.livenessProbe.httpGet.path).toBe('/livez');
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
      expect(portNumber(nodeContainer, nodeContainer[probe].httpGet.port), probe).toBe(port);
    }
    // A loaded node is alive: liveness must never hit /status, which a drain or a lost browser turns 503.
    expect(nodeContainer.livenessProbe.httpGet.path).not.toBe('/status');
  });

  it('node: termination grace covers preStop plus SHOTFLEET_SHUTDOWN_GRACE_MS, with time to close browsers', () => {
    const drainSeconds = Number(envOf(nodeContainer).SHOTFLEET_SHUTDOWN_GRACE_MS ?? 30000) / 1000;
    const preStop: string[] = nodeContainer.lifecycle.preStop.exec.command;
    expect(preStop[0]).toBe('sleep');
    const preStopSeconds = Number(preStop[1]);
    expect(nodePod.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStopSeconds + drainSeconds + 5);
  });

  it('node: /dev/shm mounted as memory exactly when Chromium uses it; not root; Chromium keeps its sandbox', () => {
    const launch = fs.readFileSync(path.join(repoRoot, 'src/render-pool/launch.ts'), 'utf8');
    const shm = nodeContainer.volumeMounts.find((v: Manifest) => v.mountPath === '/dev/shm');
    if (launch.includes("'--disable-dev-shm-usage'")) {
      expect(shm, 'Chromium runs with --disable-dev-shm-usage: a /dev/shm volume would hold nothing').toBeUndefined();
    } else {
      expect(nodePod.spec.volumes.find((v: Manifest) => v.name === shm?.name)?.emptyDir?.medium).toBe('Memory');
    }
    expect(nodePod.spec.securityContext.runAsNonRoot).toBe(true);
    expect(nodePod.spec.securityContext.runAsUser).toBeGreaterThan(0);
    expect(nodeContainer.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(nodeContainer.securityContext.capabilities.drop).toEqual(['ALL']);
    expect(envOf(nodeContainer).SHOTFLEET_CHROME_SANDBOX).toBe('on');
  });

  it("node: seccomp is the kit's Localhost profile: moby's default refusals kept, the sandbox's namespaces allowed", () => {
    const seccomp = nodePod.spec.securityContext.seccompProfile;
    expect(seccomp.type).toBe('Localhost');
    const file = path.join(repoRoot, 'deploy/seccomp', seccomp.localhostProfile);
    expect(fs.existsSync(file), `${seccomp.localhostProfile} in deploy/seccomp`).toBe(true);
    const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as { defaultAction: string; syscalls: Manifest[] };
    // A deny-by-default filter: an allow-by-default profile would switch seccomp off in all but name.
    expect(profile.defaultAction).toBe('SCMP_ACT_ERRNO');
    const unconditional = (name: string) =>
      profile.syscalls.some((r) => r.action === 'SCMP_ACT_ALLOW' && r.names.includes(name) && !r.args && !r.includes && !r.excludes);
    for (const name of ['clone', 'unshare', 'chroot']) expect(unconditional(name), `${name} allowed without conditions`).toBe(true);
    // What moby's profile still refuses without CAP_SYS_ADMIN stays refused.
    for (const name of ['mount', 'setns', 'bpf', 'ptrace']) expect(unconditional(name), name).toBe(false);
  });

  it('node: resources agree with SHOTFLEET_PAGES (a core and ~300 MiB a page, room for the node and /dev/shm)', () => {
    const env = envOf(nodeContainer);
    const pages = Number(env.SHOTFLEET_PAGES);
    expect(pages).toBeGreaterThan(0);
    const { requests, limits } = nodeContainer.resources;
    expect(quantity(requests.cpu)).toBeGreaterThanOrEqual(pages);
    const memoryLimit = quantity(limits.memory);
    const shm = nodePod.spec.volumes
      .filter((v: Manifest) => v.emptyDir?.medium === 'Memory')
      .reduce((sum: number, v: Manifest) => sum + quantity(v.emptyDir.sizeLimit), 0);
    expect(memoryLimit).toBeGreaterThanOrEqual(pages * 300 * 2 ** 20 + 256 * 2 ** 20 + shm);
    expect(quantity(requests.memory)).toBe(memoryLimit);
    // The memory shedding threshold then defaults to 80 % of the limit; a fixed one must stay below it.
    if (env.SHOTFLEET_MAX_MEMORY_BYTES) expect(Number(env.SHOTFLEET_MAX_MEMORY_BYTES)).toBeLessThan(memoryLimit);
  });

  it('Service and PodDisruptionBudget select the node pods; the Service targets the node port', () => {
    const labels = nodePod.metadata.labels;
    const service = find('Service', 'shotfleet-node');
    expect(matches(service.spec.selector, labels)).toBe(true);
    expect(portNumber(nodeContainer, service.spec.ports[0].targetPort)).toBe(3000);
    const pdb = find('PodDisruptionBudget', 'shotfleet-node');
    expect(matches(pdb.spec.selector.matchLabels, labels)).toBe(true);
    expect(matches(nodeDeployment.spec.selector.matchLabels, labels)).toBe(true);
    // The edge's selector must not also catch node pods (and the other way round).
    expect(matches(edge.spec.selector.matchLabels, labels)).toBe(false);
    expect(matches(nodeDeployment.spec.selector.matchLabels, edge.spec.template.metadata.labels)).toBe(false);
  });

  it('edge: the hub is a sidecar with /livez probes, HAProxy shares its admin socket and is served by Service "shotfleet"', () => {
    const hub = container('hub');
    expect(hub.restartPolicy).toBe('Always');
    expect(hub.startupProbe.httpGet.path).toBe('/livez');
    expect(portNumber(hub, hub.startupProbe.httpGet.port)).toBe(Number(envOf(hub).SHOTFLEET_PORT));
    const socket = envOf(hub).SHOTFLEET_HAPROXY_SOCKET;
    const socketDir = path.dirname(socket);
    const haproxy = container('haproxy');
    const mountOf = (c: Manifest, at: string) => c.volumeMounts.find((v: Manifest) => v.mountPath === at)?.name;
    expect(mountOf(hub, socketDir)).toBeDefined();
    expect(mountOf(haproxy, socketDir)).toBe(mountOf(hub, socketDir));
    const clients = find('Service', 'shotfleet');
    expect(matches(clients.spec.selector, edge.spec.template.metadata.labels)).toBe(true);
    expect(portNumber(haproxy, clients.spec.ports[0].targetPort)).toBe(8080);
    // Nodes register with the hubs by their stable StatefulSet names, through the headless Service.
    const hubs = find('Service', 'shotfleet-hub');
    expect(hubs.spec.clusterIP).toBe('None');
    expect(edge.spec.serviceName).toBe('shotfleet-hub');
    // A number: clusters before 1.32 do not resolve port names declared on a sidecar (init) container.
    expect(typeof hubs.spec.ports[0].targetPort).toBe('number');
    const pods: number[] = [];
    for (const hubUrl of envOf(nodeContainer).SHOTFLEET_HUB_URL.split(',')) {
      const { hostname, port } = new URL(hubUrl);
      const [pod, service] = hostname.split('.');
      expect(pod).toMatch(new RegExp(`^${edge.metadata.name}-\\d+$`));
      pods.push(Number(pod.split('-').pop()));
      expect(service).toBe(hubs.metadata.name);
      expect(Number(port)).toBe(portNumber(hub, hubs.spec.ports[0].targetPort));
    }
    // Every node registers with every hub, so either edge pod can go.
    expect(pods.sort()).toEqual([...Array(edge.spec.replicas).keys()]);
  });

  it('edge: no single point of failure: two or more pods, a PDB letting one go at a time, spread over machines', () => {
    expect(edge.spec.replicas).toBeGreaterThanOrEqual(2);
    const pdb = find('PodDisruptionBudget', 'shotfleet-edge');
    expect(matches(pdb.spec.selector.matchLabels, edge.spec.template.metadata.labels)).toBe(true);
    expect(matches(pdb.spec.selector.matchLabels, nodePod.metadata.labels)).toBe(false);
    expect(pdb.spec.maxUnavailable).toBeLessThan(edge.spec.replicas);
    const spread = edge.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    expect(spread.topologyKey).toBe('kubernetes.io/hostname');
    expect(matches(spread.labelSelector.matchLabels, edge.spec.template.metadata.labels)).toBe(true);
  });

  it('tokens: clients and hub in separate Secrets; the edge holds only the hub token', () => {
    const secretAt = (c: Manifest, pod: Manifest, file: string | undefined) => {
      if (!file) return undefined;
      const mount = c.volumeMounts.find((v: Manifest) => v.mountPath === path.dirname(file));
      return pod.spec.volumes.find((v: Manifest) => v.name === mount?.name)?.secret?.secretName;
    };
    const nodeEnv = envOf(nodeContainer);
    const clientSecret = secretAt(nodeContainer, nodePod, nodeEnv.SHOTFLEET_TOKEN_FILE);
    const hubSecret = secretAt(nodeContainer, nodePod, nodeEnv.SHOTFLEET_HUB_TOKEN_FILE);
    expect(clientSecret).toBe('shotfleet-token');
    expect(hubSecret).toBe('shotfleet-hub-token');
    for (const name of [clientSecret, hubSecret]) find('Secret', name!);
    for (const c of [container('hub'), container('haproxy-config')]) {
      expect(secretAt(c, edge.spec.template, envOf(c).SHOTFLEET_HUB_TOKEN_FILE), c.name).toBe(hubSecret);
      expect(envOf(c).SHOTFLEET_TOKEN_FILE, `${c.name} holds the clients' token`).toBeUndefined();
    }
  });

  it('autoscaling: KEDA scales the node Deployment on a metric the hub exports', async () => {
    const scaled = find('ScaledObject', 'shotfleet-node');
    expect(scaled.spec.scaleTargetRef.name).toBe(nodeDeployment.metadata.name);
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(2);
    const trigger = scaled.spec.triggers[0];
    expect(trigger.type).toBe('prometheus');
    const named = metricNamesIn(trigger.metadata.query);
    expect(named).toEqual(['shotfleet_hub_desired_nodes']);
    const exported = await exportedMetricNames();
    expect(exported.has(named[0])).toBe(true);
    expect(nodeDeployment.spec.replicas, 'replicas belong to the autoscaler').toBeUndefined();
  });

  it('autoscaling: a missing metric keeps the fleet (fallback, empty answers are errors), never shrinks it', () => {
    const scaled = find('ScaledObject', 'shotfleet-node');
    expect(scaled.spec.triggers[0].metadata.ignoreNullValues).toBe('false');
    const { fallback } = scaled.spec;
    expect(fallback.failureThreshold).toBeGreaterThan(0);
    expect(fallback.replicas).toBeGreaterThanOrEqual(scaled.spec.minReplicaCount);
    // static would set the fallback count, shrinking a larger fleet during the outage.
    expect(fallback.behavior).toBe('currentReplicasIfHigher');
  });

  it('every SHOTFLEET_ variable set is a setting, and the node and hub settings pass validation', () => {
    const tokenFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-k8s-')), 'token');
    fs.writeFileSync(tokenFile, 'test-token\n');
    for (const c of [nodeContainer, ...edgeContainers]) {
      const env = envOf(c);
      const names = Object.keys(env)
        .filter((n) => n.startsWith('SHOTFLEET_'))
        .map((n) => n.slice('SHOTFLEET_'.length));
      expect(
        names.filter((n) => !(settingNames as string[]).includes(n)),
        c.name,
      ).toEqual([]);
      const values = Object.fromEntries(
        Object.entries(env)
          .filter(([n]) => n.startsWith('SHOTFLEET_'))
          .map(([n, v]) => [n, n.endsWith('TOKEN_FILE') ? tokenFile : v.replace('$(POD_IP)', '10.0.0.7').replace('$(POD_NAME)', 'node-7')]),
      );
      expect(() => loadConfig('hub', {}, values), c.name).not.toThrow();
    }
  });
});

describe('the edge pod start, run here with the real hub and haproxy -c', () => {
  const started: RunningProcess[] = [];
  afterAll(async () => {
    for (const p of started) await p.stop();
  });

  it("the hub sidecar's settings start a hub, and the init container's command writes a config HAProxy accepts", async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-edge-'));
    try {
      fs.writeFileSync(path.join(work, 'token'), 'edge-token\n');
      const hubEnv = envOf(container('hub'));
      const socket = path.join(work, 'admin.sock');
      const hub = await startShotfleet('hub', {
        ...hubEnv,
        SHOTFLEET_PORT: '0',
        SHOTFLEET_HUB_TOKEN_FILE: path.join(work, 'token'),
        SHOTFLEET_HAPROXY_SOCKET: socket, // not there yet: HAProxy starts after the hub
      });
      started.push(hub);

      const init = container('haproxy-config');
      const script: string = init.args[0];
      const outFile: string = `${init.volumeMounts[0].mountPath}/haproxy.cfg`;
      const local = script
        .replace('node dist/src/cli/main.js', `${JSON.stringify(process.execPath)} ${JSON.stringify(cliEntry)}`)
        .replace('http://127.0.0.1:4000', hub.url)
        .replace(outFile, path.join(work, 'haproxy.cfg'));
      expect(local).not.toBe(script);
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn('/bin/sh', ['-c', local], {
          cwd: repoRoot,
          env: { PATH: process.env.PATH, SHOTFLEET_HUB_TOKEN_FILE: path.join(work, 'token') },
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        child.on('exit', resolve);
      });
      expect(code).toBe(0);
      const config = fs.readFileSync(path.join(work, 'haproxy.cfg'), 'utf8');
      expect(config).toContain(`stats socket ${socket} mode 600 level admin`);
      expect(config).toMatch(/bind :8080/);
      const check = checkHaproxyConfig(config);
      expect(check.ok, check.output).toBe(true);
      // HAProxy's args read the file the init container wrote.
      expect(container('haproxy').args).toContain(outFile);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
