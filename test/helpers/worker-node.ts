import fs from 'node:fs';
import { inject } from 'vitest';
import { statusOf } from './processes.js';
import { waitFor } from './wait.js';

/**
 * The node each test worker lends to the files it runs, one file at a time (test/global-setup.ts starts one per
 * worker): for files that need a real node with these settings and nothing of their own. A file that needs other
 * settings, or stops, kills or floods its node, starts its own.
 */
export const workerNodeEnv = { SHOTFLEET_PAGES: '1', SHOTFLEET_ALLOW_HOSTS: '127.0.0.1,127.0.0.2,127.0.0.3' };

/** What global-setup tells the workers of each node: worker i (VITEST_POOL_ID i + 1) uses node i. */
export interface WorkerNodeAddress {
  url: string;
  pid: number;
  /** The node's JSON log lines, appended as it writes them. */
  logFile: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    workerNodes: WorkerNodeAddress[];
  }
}

export interface WorkerNode {
  url: string;
  proc: { pid: number };
  /** The log lines the node wrote since this file took it. */
  readonly logs: Record<string, unknown>[];
}

/** This worker's node, for the calling file, once it is ready (its /status answers 200). */
export async function workerNode(): Promise<WorkerNode> {
  const nodes = inject('workerNodes');
  const address = nodes[Number(process.env.VITEST_POOL_ID ?? '1') - 1];
  if (!address) throw new Error(`no worker node for VITEST_POOL_ID ${process.env.VITEST_POOL_ID}: test/vitest.config.ts starts one per worker`);
  const readLines = () =>
    fs
      .readFileSync(address.logFile, 'utf8')
      .split('\n')
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  await waitFor(
    `the worker node at ${address.url} to be ready (its log: ${address.logFile})`,
    async () => (await statusOf(`${address.url}/status`)) === 200,
    120_000,
    25,
  );
  const before = readLines().length;
  return {
    url: address.url,
    proc: { pid: address.pid },
    get logs() {
      return readLines().slice(before);
    },
  };
}
