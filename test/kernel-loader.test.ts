/**
 * The kernel loader: the one include mechanism, the line map through includes, WGSL errors
 * reported as `kernels/<file>:line:col`, and the pipeline cache keyed by file + constants.
 */
import { describe, expect, it } from 'vitest';
import { getPipeline, loadKernelSource } from '../src/gpu/kernels.ts';
import { nodeKernelFiles } from '../src/node/kernel-files.ts';
import { gpu } from './util/gpu.ts';

const BROKEN = '../test/fixtures/wgsl/broken_after_include.wgsl';

describe('loadKernelSource', () => {
  it('expands //#include lines from kernels/include once each and maps every line back to its file', () => {
    const src = loadKernelSource('rmsnorm_fwd.wgsl', nodeKernelFiles);
    const lines = src.code.split('\n');
    expect(lines.length).toBe(src.lineMap.length);
    const fnLine = lines.findIndex((l) => l.startsWith('fn linear_workgroup'));
    expect(src.lineMap[fnLine].file).toBe('kernels/include/grid.wgsl');
    const mainLine = lines.findIndex((l) => l.startsWith('fn main'));
    expect(src.lineMap[mainLine].file).toBe('kernels/rmsnorm_fwd.wgsl');
    expect(src.lineMap[mainLine].line).toBeLessThan(mainLine + 1); // the include added lines before it
    expect(lines.filter((l) => l.startsWith('fn bf16_unpack')).length).toBe(1);
  });
});

describe.skipIf(!gpu)('pipeline compilation', () => {
  it('reports a WGSL error at file:line:col of the kernel file, past the include', async () => {
    const err = await getPipeline(gpu!, BROKEN).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).not.toBeNull();
    // `let bad: f32 = id.x;` is line 9 of the fixture.
    expect(err!.message).toMatch(/kernels\/\.\.\/test\/fixtures\/wgsl\/broken_after_include\.wgsl:9:\d+: /);
    expect(err!.message).toContain('let bad: f32 = id.x;');
  });

  it('caches pipelines by file and override constants', async () => {
    const a = await getPipeline(gpu!, 'add_fwd.wgsl', { WG: 64 });
    const b = await getPipeline(gpu!, 'add_fwd.wgsl', { WG: 64 });
    const c = await getPipeline(gpu!, 'add_fwd.wgsl', { WG: 128 });
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });
});
