import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/processes.js';

/**
 * The folders of src/ from the top down (README: Architecture). A file may import from its own folder and from any
 * folder of a lower layer, never from its own layer's other folders or from above: the commands sit on the
 * servers and the client, which sit on the parts, which sit on the shared basics.
 */
const layers: string[][] = [
  ['cli'],
  ['server', 'fleet', 'shoot'],
  ['http'],
  ['api', 'result-cache'],
  ['pipeline'],
  ['render'],
  ['sessions'],
  ['render-pool', 'storage'],
  ['admission', 'policy', 'agent', 'signing', 'haproxy'],
  ['request'],
  ['config', 'metrics', 'async'],
  ['errors', 'log', 'keys'],
];
const layerOf = new Map(layers.flatMap((folders, i) => folders.map((f) => [f, i] as const)));

const srcDir = path.join(repoRoot, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(full) : e.name.endsWith('.ts') ? [full] : [];
  });
}

/** Relative imports of a file, static and dynamic, type-only included: a type import couples files as well. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(?\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
  return specifiers.map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')));
}

const folderOf = (file: string) => path.relative(srcDir, file).split(path.sep)[0];
const files = sourceFiles(srcDir);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('the source tree', () => {
  it('has every folder of src/ in a layer, and every file in a folder', () => {
    const entries = fs.readdirSync(srcDir, { withFileTypes: true });
    expect(entries.filter((e) => e.isDirectory() && !layerOf.has(e.name)).map((e) => e.name)).toEqual([]);
    expect(entries.filter((e) => !e.isDirectory()).map((e) => e.name)).toEqual([]);
  });

  it('imports only downwards: never a folder of the same layer or of a layer above', () => {
    const upward: string[] = [];
    for (const [file, targets] of graph) {
      for (const target of targets) {
        const from = folderOf(file);
        const to = folderOf(target);
        if (from !== to && layerOf.get(to)! <= layerOf.get(from)!) upward.push(`${path.relative(srcDir, file)} → ${path.relative(srcDir, target)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('imports only files that exist, and has no import cycle', () => {
    const missing = [...graph.values()].flat().filter((t) => !graph.has(t));
    expect(missing.map((t) => path.relative(repoRoot, t))).toEqual([]);
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(file)), file].map((f) => path.relative(srcDir, f)).join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const target of graph.get(file) ?? []) visit(target, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });
});
