import { compileSources } from './helpers/compiled-sources.js';
import { repoRoot } from './helpers/processes.js';

/** Once per test run, before any file: the JavaScript the tests' shotfleet processes start from. */
export default async function setup(): Promise<void> {
  await compileSources(repoRoot);
}
