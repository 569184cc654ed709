import client from 'prom-client';
import { packageVersion } from './package-version.js';

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
