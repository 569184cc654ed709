import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { compileSources } from './helpers/compiled-sources.js';
import { repoRoot, spawnShotfleet } from './helpers/processes.js';
import { workerNodeEnv } from './helpers/worker-node.js';

/**
 * Once per test run, before any file: the JavaScript the tests' shotfleet processes start from, then one node per
 * worker (helpers/worker-node.ts) — a node start is seconds of CPU, and many files need nothing but a plain node.
 * The nodes are not waited for here: the first files run while they start, and a file that takes one waits for its
 * /status 200.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await compileSources(repoRoot);
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'shotfleet-worker-nodes-'));
  const workers = Math.max(1, project.config.maxWorkers);
  const nodes = await Promise.all(
    Array.from({ length: workers }, async (_, i) => {
      const node = await spawnShotfleet('serve', workerNodeEnv);
      const logFile = path.join(logDir, `node-${i + 1}.log`);
      node.proc.stdout!.pipe(fs.createWriteStream(logFile));
      return { node, logFile };
    }),
  );
  project.provide(
    'workerNodes',
    nodes.map(({ node, logFile }) => ({ url: node.url, pid: node.proc.pid!, logFile })),
  );
  return async () => {
    await Promise.all(nodes.map(({ node }) => node.stop()));
    fs.rmSync(logDir, { recursive: true, force: true });
  };
}
