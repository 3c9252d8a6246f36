/**
 * The seams of src/, checked on the static import graph (no GPU needed):
 * - the GPU runtime, the ops and the model (src/gpu, src/ops, src/model) and everything they import
 *   use no Node-only API (node:* modules, the `webgpu` package, `process`, `Buffer`), so the same
 *   kernels and model run in a browser tab; the Node side is src/node, src/formats and the CLI;
 * - the core SFT format (src/data/*.ts) does not import the data-set pipeline (src/data/pipeline);
 * - no import cycles anywhere in src/.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.join(import.meta.dirname, '..', 'src');
const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s+(type\s+)?(?:[^'"]*?\s+from\s+)?'([^']+)'/g;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Value imports of a file (type-only imports vanish at run time and are skipped): resolved paths or bare specifiers. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    if (m[1]) continue;
    out.push(m[2].startsWith('.') ? path.resolve(path.dirname(file), m[2]) : m[2]);
  }
  return out;
}

const rel = (p: string) => path.relative(SRC, p);

describe('layering of src/', () => {
  const files = tsFiles(SRC);

  it('keeps src/gpu, src/ops and src/model (and what they import) free of Node-only APIs', () => {
    const roots = files.filter((f) => /^(gpu|ops|model)\//.test(rel(f)));
    expect(roots.length).toBeGreaterThan(20);
    const seen = new Set<string>();
    const problems: string[] = [];
    const visit = (f: string, via: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      const code = readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, '');
      if (/\bprocess\.|\bBuffer\b/.test(code)) problems.push(`${rel(f)} (from ${via}) uses process or Buffer`);
      for (const dep of imports(f)) {
        if (dep.startsWith('node:') || dep === 'webgpu') problems.push(`${rel(f)} (from ${via}) imports ${dep}`);
        else if (dep.startsWith('/')) visit(dep, via);
      }
    };
    for (const r of roots) visit(r, rel(r));
    expect(problems).toEqual([]);
  });

  it('keeps the core SFT format out of the data-set pipeline', () => {
    const core = files.filter((f) => /^data\/[^/]+\.ts$/.test(rel(f)));
    const bad = core.flatMap((f) => imports(f).filter((d) => rel(d).startsWith('data/pipeline/')).map((d) => `${rel(f)} -> ${rel(d)}`));
    expect(bad).toEqual([]);
  });

  it('has no import cycles (type-only imports included)', () => {
    const all = (file: string) => {
      const text = readFileSync(file, 'utf8');
      return [...text.matchAll(IMPORT_RE)].map((m) => m[2]).filter((s) => s.startsWith('.')).map((s) => path.resolve(path.dirname(file), s));
    };
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const stack: string[] = [];
    const dfs = (f: string) => {
      state.set(f, 'open');
      stack.push(f);
      for (const d of all(f)) {
        if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].map(rel).join(' -> '));
        else if (!state.has(d)) dfs(d);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) dfs(f);
    expect(cycles).toEqual([]);
  });
});
