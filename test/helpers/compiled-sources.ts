import fs from 'node:fs';
import path from 'node:path';

/**
 * The test run's JavaScript copy of src/, which the tests' shotfleet processes start from. Compiled once per run
 * with esbuild, file by file, as tsx would on the fly: a node started through tsx took ~1 s longer to its first
 * /status 200 and ~2 s more CPU (PAGES 1, quiet machine: 3.9 s and 6.4 CPU-s against 2.8 s and 4.4 CPU-s), and
 * the suite starts a shotfleet process about a hundred times. It sits inside the repository so that its imports
 * of packages resolve to this repository's node_modules.
 */
export function compiledRoot(repoRoot: string): string {
  return path.join(repoRoot, '.test-build');
}

/** Compiles every src/ file to `compiledRoot`, replacing what an earlier run left there. */
export async function compileSources(repoRoot: string): Promise<void> {
  const target = compiledRoot(repoRoot);
  // Built beside and swapped in whole, so a second run starting at the same moment never sees half a tree.
  const staging = `${target}.${process.pid}`;
  const entryPoints = fs
    .readdirSync(path.join(repoRoot, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => path.join(repoRoot, 'src', file));
  // Loaded here only: every test file imports compiledRoot (through processes.ts), and none needs the compiler.
  const { build } = await import('esbuild');
  await build({ entryPoints, outdir: staging, outbase: repoRoot, format: 'esm', platform: 'node', target: 'node20', logLevel: 'error' });
  fs.rmSync(target, { recursive: true, force: true });
  fs.renameSync(staging, target);
}
