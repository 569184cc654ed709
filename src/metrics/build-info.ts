import fs from 'node:fs';
import client from 'prom-client';

/** The package's version, read from the package.json above this file (in src/ and in dist/src/ alike). */
export function packageVersion(): string {
  let dir = new URL('.', import.meta.url);
  for (let depth = 0; depth < 6; depth++) {
    const candidate = new URL('package.json', dir);
    if (fs.existsSync(candidate)) {
      const pkg = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'shotfleet' && pkg.version) return pkg.version;
    }
    dir = new URL('..', dir);
  }
  return 'unknown';
}

/**
 * `shotfleet_build_info{version,node_version,role} 1`: the usual way to see in a dashboard which release each
 * process runs (join it on instance) while a rollout is under way.
 */
export function registerBuildInfo(registry: client.Registry, role: 'node' | 'hub'): void {
  const gauge = new client.Gauge({
    name: 'shotfleet_build_info',
    help: 'Always 1; the labels say which shotfleet release and Node.js this process runs',
    labelNames: ['version', 'node_version', 'role'] as const,
    registers: [registry],
  });
  gauge.set({ version: packageVersion(), node_version: process.version, role }, 1);
}
