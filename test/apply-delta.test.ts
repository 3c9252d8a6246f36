// `wgpu-char apply-delta` (src/formats/weight-delta.ts, src/cli/apply-delta.ts) against torch's own f16
// arithmetic (test/fixtures/make_torch_bin_fixture.py): making a diff with --reverse gives torch's
// target.half() − base.half() bit for bit, applying it gives torch's base.half() + delta bit for bit,
// from .bin or safetensors inputs; the output directory's files; and the checks before any data.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsModel, writeSafetensors } from '../src/formats/safetensors.ts';
import { TorchBinModel } from '../src/formats/torch-bin.ts';
import { applyDelta, combineF16 } from '../src/formats/weight-delta.ts';
import type { WeightsSource } from '../src/formats/weights-source.ts';
import { f32ToF16Bits } from '../src/util/bf16.ts';
import { expectUserErrorAsync } from './util/user-error.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIX = path.join(ROOT, 'test', 'fixtures', 'torch-bin');
const BASE = path.join(FIX, 'f32');

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wgpu-char-ad-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every tensor of the safetensors in `outDir` equals `expected`'s as raw bits (F16 both sides). */
function expectSameF16(outDir: string, expected: WeightsSource): void {
  const got = SafetensorsModel.open(outDir);
  try {
    expect(got.names().sort()).toEqual(expected.names().sort());
    for (const n of expected.names()) {
      const g = got.readTensor(n);
      const e = expected.readTensor(n);
      expect(g.dtype, n).toBe('F16');
      expect(e.dtype, n).toBe('F16');
      expect(g.data, n).toEqual(e.data);
    }
  } finally {
    got.close();
  }
}

describe('apply-delta', () => {
  it('round trip: --reverse makes torch\'s delta bit for bit, applying it makes torch\'s recovered target bit for bit', async () => {
    const d = path.join(tmp, 'made-delta');
    const notes: string[] = [];
    const r = await applyDelta({ base: BASE, delta: path.join(FIX, 'target'), out: d, reverse: true, maxShardBytes: 1024, onNote: (s) => notes.push(s) });
    expect(r.tensors).toBe(21);
    expect(readdirSync(d).sort()).toEqual(['config.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors', 'model.safetensors.index.json', 'special_tokens_map.json', 'tokenizer_config.json']);
    expect(notes).toEqual([expect.stringMatching(/target: no tokenizer\.model to copy/)]);
    const torchDelta = TorchBinModel.open(path.join(FIX, 'delta'));
    expectSameF16(d, torchDelta);
    torchDelta.close();
    const cfg = JSON.parse(readFileSync(path.join(d, 'config.json'), 'utf8'));
    expect(cfg.torch_dtype).toBe('float16');
    expect(cfg.vocab_size).toBe(16);
    expect(readFileSync(path.join(d, 'tokenizer_config.json'), 'utf8')).toBe(readFileSync(path.join(FIX, 'target', 'tokenizer_config.json'), 'utf8'));

    const t = path.join(tmp, 'recovered');
    await applyDelta({ base: BASE, delta: d, out: t, onNote: () => {} });
    const torchRecovered = SafetensorsModel.open(path.join(FIX, 'recovered.safetensors'));
    expectSameF16(t, torchRecovered);
    torchRecovered.close();
  });

  it('applies the released-style .bin shards directly; a bf16 base and an empty --out work', async () => {
    const t = path.join(tmp, 'from-bin');
    await applyDelta({ base: BASE, delta: path.join(FIX, 'delta'), out: t, onNote: () => {} });
    const torchRecovered = SafetensorsModel.open(path.join(FIX, 'recovered.safetensors'));
    expectSameF16(t, torchRecovered);
    torchRecovered.close();
    // An empty --out is used; no temp directory is left behind.
    const empty = path.join(tmp, 'empty-out');
    mkdirSync(empty);
    await applyDelta({ base: path.join(FIX, 'bf16'), delta: path.join(FIX, 'delta'), out: empty, onNote: () => {} });
    expect(readdirSync(empty)).toContain('model.safetensors');
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('f16 arithmetic: one rounding of the exact sum, as torch\'s half add', () => {
    const bits = (xs: number[]) => new Uint16Array(xs.map(f32ToF16Bits));
    // 2048 + 1 is a tie in f16 (spacing 2 above 2048): rounds to even 2048; 2050 + 1 rounds to 2052.
    expect([...combineF16(bits([2048, 2050, 1, -0.5]), bits([1, 1, -1, 0.25]), 1)]).toEqual([...bits([2048, 2052, 0, -0.25])]);
    expect([...combineF16(bits([0.1]), bits([0.1]), -1)]).toEqual([0]);
  });

  it('checks names, shapes, ranges and the output directory before writing, each on one line', async () => {
    const delta = path.join(FIX, 'delta');
    await expectUserErrorAsync(applyDelta({ base: BASE, delta, out: path.join(FIX, 'f32') }), path.join(FIX, 'f32'), /exists and is not empty/);

    // A base missing a tensor, one with an extra tensor, one with a wrong shape.
    const ref = SafetensorsModel.open(path.join(FIX, 'reference.safetensors'));
    const tensors = ref.names().map((n) => ({ name: n, dtype: 'F32' as const, shape: ref.info(n).shape, data: ref.readF32(n) }));
    ref.close();
    const write = async (name: string, ts: typeof tensors) => {
      const dir = path.join(tmp, name);
      mkdirSync(dir);
      await writeSafetensors(path.join(dir, 'model.safetensors'), ts);
      return path.join(dir, 'model.safetensors');
    };
    const noHead = await write('no-head', tensors.filter((t) => t.name !== 'lm_head.weight'));
    await expectUserErrorAsync(applyDelta({ base: path.dirname(noHead), delta, out: path.join(tmp, 'o1'), onNote: () => {} }), noHead, /missing tensor lm_head\.weight \(the delta .* has it\)/);
    const extra = await write('extra', [...tensors, { name: 'model.extra', dtype: 'F32', shape: [1], data: new Float32Array(1) }]);
    await expectUserErrorAsync(applyDelta({ base: path.dirname(extra), delta, out: path.join(tmp, 'o2'), onNote: () => {} }), extra, /tensor model\.extra is not in the delta/);
    const wide = await write('wide', tensors.map((t) => (t.name === 'model.norm.weight' ? { ...t, shape: [9], data: new Float32Array(9) } : t)));
    await expectUserErrorAsync(applyDelta({ base: path.dirname(wide), delta, out: path.join(tmp, 'o3'), onNote: () => {} }), wide, /model\.norm\.weight has shape \[9\], the delta has \[8\]/);
    const huge = await write('huge', tensors.map((t) => (t.name === 'model.norm.weight' ? { ...t, data: new Float32Array(8).fill(1e6) } : t)));
    await expectUserErrorAsync(applyDelta({ base: path.dirname(huge), delta, out: path.join(tmp, 'o4'), onNote: () => {} }), huge, /model\.norm\.weight element 0 is not finite in f16 \(outside f16's ±65504\)/);
    for (const o of ['o1', 'o2', 'o3', 'o4']) expect(existsSync(path.join(tmp, o)), o).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('the command: one line on stdout, a user error is one line and exit 1', () => {
    const run = (args: string[]) => execFileSync(process.execPath, [path.join(ROOT, 'bin', 'wgpu-char.js'), 'apply-delta', ...args],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const out = path.join(tmp, 'cli');
    const stdout = run(['--base', BASE, '--delta', path.join(FIX, 'delta'), '--out', out]);
    expect(stdout).toMatch(/cli: 21 tensors, 2\.5 KiB F16 \(base \+ delta\) in [\d.]+ s; files: model\.safetensors, config\.json, tokenizer_config\.json, special_tokens_map\.json\n$/);
    let err: { status?: number; stderr?: string } = {};
    try {
      run(['--base', BASE, '--delta', path.join(FIX, 'delta'), '--out', out]);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).toBe(1);
    expect(err.stderr).toBe(`wgpu-char: ${out}: exists and is not empty (apply-delta writes a new directory)\n`);
  });
});
