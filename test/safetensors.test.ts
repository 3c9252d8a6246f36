// Safetensors reader/writer (src/formats/safetensors.ts) and the bf16/f16 conversions (src/util/bf16.ts):
// round trips at odd shapes, the layout the reference writer produces, the PyTorch-written fixture,
// shards, files past 4 GiB, and a one-line UserError naming the file for every kind of damage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { INDEX_FILE, SafetensorsFile, SafetensorsModel, safetensorsHeader, shardFileName, writeSafetensors, writeSafetensorsSharded, type TensorToWrite } from '../src/formats/safetensors.ts';
import {
  bf16ArrayToF32, bf16BitsToF32, f16ArrayToF32, f16BitsToF32, f32ArrayToBf16, f32ArrayToF16, f32Bits, f32BitsToBf16Bits,
  f32BitsToF16Bits, f32FromBits, f32ToBf16Bits, f32ToF16Bits,
} from '../src/util/bf16.ts';
import { expectUserError, expectUserErrorAsync } from './util/user-error.ts';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'llama-tiny');
interface WeightCheck { shape: number[]; sum: number; abs_sum: number; first: number[]; bf16_first: number[]; bf16_bits_sum: number }
const golden = JSON.parse(readFileSync(path.join(FIXTURE, 'golden.json'), 'utf8')) as {
  weights: Record<string, WeightCheck>; bf16_rounding: [number, number][]; f16_rounding: [number, number][];
};

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wgpu-char-st-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** mulberry32: a seeded uniform [0, 1) generator. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomF32(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * 3;
  return a;
}

/** A file made of an explicit header length, header text and data bytes (for damaged files). */
function rawFile(name: string, header: string, data: Uint8Array = new Uint8Array(0), headerLen?: bigint): string {
  const p = path.join(tmp, name);
  const h = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(h.length));
  writeFileSync(p, Buffer.concat([len, h, data]));
  return p;
}

describe('bf16 / f16 conversions', () => {
  it('rounds f32 -> bf16 to nearest even on hand-derived bit patterns', () => {
    // 1 + 2^-8 is exactly halfway between bf16 1.0 (0x3F80, even) and 1.0078125 (0x3F81).
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    // 1 + 3*2^-8 is halfway between 0x3F81 (odd) and 0x3F82 (even).
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32BitsToBf16Bits(0x3f808001)).toBe(0x3f81); // just above the tie
    expect(f32BitsToBf16Bits(0x3f807fff)).toBe(0x3f80); // just below the tie
    expect(f32ToBf16Bits(-(1 + 2 ** -8))).toBe(0xbf80);
    expect(f32ToBf16Bits(2 - 2 ** -8)).toBe(0x4000); // tie that carries into the exponent
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
    expect(f32ToBf16Bits(Infinity)).toBe(0x7f80);
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
    expect(f32BitsToBf16Bits(0x7f7fffff)).toBe(0x7f80); // f32 max overflows to Inf
    for (const nanBits of [0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001]) {
      expect(Number.isNaN(bf16BitsToF32(f32BitsToBf16Bits(nanBits)))).toBe(true);
    }
  });

  it('matches torch bf16 and f16 rounding on the fixture edge cases', () => {
    for (const [u, want] of golden.bf16_rounding) {
      const got = f32BitsToBf16Bits(u);
      if (Number.isNaN(f32FromBits(u))) expect(Number.isNaN(bf16BitsToF32(got))).toBe(true);
      else expect(got.toString(16), `f32 0x${u.toString(16)}`).toBe(want.toString(16));
    }
    for (const [u, want] of golden.f16_rounding) {
      const got = f32BitsToF16Bits(u);
      if (Number.isNaN(f32FromBits(u))) expect(Number.isNaN(f16BitsToF32(got))).toBe(true);
      else expect(got.toString(16), `f32 0x${u.toString(16)}`).toBe(want.toString(16));
    }
  });

  it('widens every bf16 and f16 pattern exactly (round trip through f32 is the identity)', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const b = bf16ArrayToF32(all);
    const h = f16ArrayToF32(all);
    for (let i = 0; i < 65536; i++) {
      if (!Object.is(b[i], bf16BitsToF32(i)) && !Number.isNaN(b[i])) expect.fail(`bf16 0x${i.toString(16)}: array and scalar widening differ`);
      if (Number.isNaN(b[i]) !== ((i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0)) expect.fail(`bf16 0x${i.toString(16)}: NaN-ness`);
      if (Number.isNaN(b[i])) continue;
      if (f32ToBf16Bits(b[i]) !== i) expect.fail(`bf16 0x${i.toString(16)} does not round-trip`);
    }
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(h[i])) {
        if (!((i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0)) expect.fail(`f16 0x${i.toString(16)} is not a NaN pattern`);
        continue;
      }
      if (!Object.is(h[i], f16BitsToF32(i)) || f32ToF16Bits(h[i]) !== i) expect.fail(`f16 0x${i.toString(16)} does not round-trip`);
    }
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(bf16BitsToF32(0x3f80)).toBe(1);
  });

  it('f32 -> f16 picks the nearest f16, ties to even (checked by distance, independent of the bit tricks)', () => {
    const r = rng(7);
    const f16vals = f16ArrayToF32(new Uint16Array(65536).map((_, i) => i));
    for (let k = 0; k < 20000; k++) {
      // values across the f16 range, subnormals included, plus exact ties between neighbours
      let x = Math.fround((r() * 2 - 1) * 2 ** (Math.floor(r() * 42) - 26));
      const h = f32ToF16Bits(x);
      if (k % 4 === 0 && (h & 0x7c00) !== 0x7c00 && (h & 0x7fff) !== 0x7bff) {
        const next = f16vals[(h & 0x8000) | ((h & 0x7fff) + 1)];
        x = Math.fround((f16vals[h] + next) / 2);
      }
      const got = f32ToF16Bits(x);
      const v = f16vals[got];
      if (Math.abs(x) >= 65520) {
        expect(Math.abs(v)).toBe(Infinity);
        continue;
      }
      for (const nb of [(got & 0x7fff) - 1, (got & 0x7fff) + 1]) {
        if (nb < 0 || nb >= 0x7c00) continue;
        const w = f16vals[(got & 0x8000) | nb];
        const dv = Math.abs(v - x), dw = Math.abs(w - x);
        if (dw < dv || (dw === dv && (got & 1) === 1)) expect.fail(`f32 ${x}: got 0x${got.toString(16)} (${v}), neighbour ${w} is nearer/even`);
      }
    }
  });

  it('array conversions agree with the scalar ones, specials included', () => {
    const src = randomF32(1001, 3);
    src.set([0, -0, Infinity, -Infinity, NaN, 3.4028234663852886e38, 1e-40, 65520, 1 + 2 ** -8], 100);
    const b = f32ArrayToBf16(src);
    const h = f32ArrayToF16(src);
    for (let i = 0; i < src.length; i++) {
      expect(b[i]).toBe(f32BitsToBf16Bits(f32Bits(src[i])));
      expect(h[i]).toBe(f32BitsToF16Bits(f32Bits(src[i])));
    }
    // A Float32Array view at a non-zero byte offset (the npm `safetensors` bug) converts correctly.
    const view = new Float32Array(src.buffer, 40, 10);
    expect([...f32ArrayToBf16(view)]).toEqual([...b.subarray(10, 20)]);
  });
});

describe('writer + reader round trip', () => {
  const specs = (): TensorToWrite[] => [
    { name: 'model.b.weight', dtype: 'F32', shape: [45, 67], data: randomF32(45 * 67, 1) },
    { name: 'bf16.z', dtype: 'BF16', shape: [3, 5, 7], data: f32ArrayToBf16(randomF32(105, 2)) },
    { name: 'a.scalar', dtype: 'F32', shape: [], data: new Float32Array([0.5]) },
    { name: 'half', dtype: 'F16', shape: [13, 1, 5], data: f32ArrayToF16(randomF32(65, 3)) },
    { name: 'bf16.a', dtype: 'BF16', shape: [7], data: f32ArrayToBf16(randomF32(7, 4)) },
    { name: 'model.a.weight', dtype: 'F32', shape: [1, 3], data: randomF32(3, 5) },
    { name: 'empty', dtype: 'BF16', shape: [0, 4], data: new Uint16Array(0) },
  ];

  it('reads back every tensor bit for bit, laid out like the reference writer', async () => {
    const ts = specs();
    const p = path.join(tmp, 'roundtrip.safetensors');
    await writeSafetensors(p, ts, { note: 'hi' });
    const f = SafetensorsFile.open(p);
    try {
      expect(f.metadata).toEqual({ format: 'pt', note: 'hi' });
      // Sorted by dtype alignment, largest first, then bytewise by name.
      expect(f.names()).toEqual(['a.scalar', 'model.a.weight', 'model.b.weight', 'bf16.a', 'bf16.z', 'empty', 'half']);
      expect(f.dataStart % 8).toBe(0);
      const size = statSync(p).size;
      expect(size).toBe(f.dataStart + ts.reduce((a, t) => a + (t.data as Float32Array | Uint16Array).byteLength, 0));
      for (const t of ts) {
        const got = f.readTensor(t.name);
        expect(got.dtype).toBe(t.dtype);
        expect(got.shape).toEqual(t.shape);
        expect(got.data.constructor).toBe(t.data.constructor);
        expect([...(got.data as Float32Array)]).toEqual([...(t.data as Float32Array)]);
        const info = f.info(t.name);
        expect((f.dataStart + info.begin) % (t.dtype === 'F32' ? 4 : 2)).toBe(0);
      }
      // Conversions on read.
      const z = ts[1].data as Uint16Array;
      expect([...f.readF32('bf16.z')]).toEqual([...bf16ArrayToF32(z)]);
      expect([...f.readBf16('bf16.z')]).toEqual([...z]);
      expect([...f.readBf16('model.b.weight')]).toEqual([...f32ArrayToBf16(ts[0].data as Float32Array)]);
      expect([...f.readF32('half')]).toEqual([...f16ArrayToF32(ts[3].data as Uint16Array)]);
      expect([...f.readBf16('half')]).toEqual([...f32ArrayToBf16(f16ArrayToF32(ts[3].data as Uint16Array))]);
      // Partial reads for streaming uploads.
      const part = new Uint8Array(8);
      f.readBytesInto('model.b.weight', part, 4 * 100);
      expect([...new Float32Array(part.buffer)]).toEqual([...(ts[0].data as Float32Array).subarray(100, 102)]);
    } finally {
      f.close();
    }
    expect(readdirSync(tmp).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('writes the exact bytes of the reference implementation (safetensors test_serialization_forced_alignement)', () => {
    // serialize({"attn0": F32 [1,1,2,3]}, metadata=None) in huggingface/safetensors' tests: header
    // {"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}} + 7 spaces = 72 bytes.
    const { bytes } = safetensorsHeader('x', [{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3] }], {});
    const want = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}' + ' '.repeat(7);
    expect(Buffer.from(bytes.subarray(0, 8)).readBigUInt64LE(0)).toBe(72n);
    expect(Buffer.from(bytes.subarray(8)).toString('utf8')).toBe(want);
    // And `__metadata__` first, when given.
    const m = safetensorsHeader('x', [{ name: 'w', dtype: 'BF16', shape: [2] }], { format: 'pt' });
    expect(Buffer.from(m.bytes.subarray(8)).toString('utf8').trimEnd()).toBe('{"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}');
  });

  it('accepts lazy (sync and async) tensor data, called in write order', async () => {
    const calls: string[] = [];
    const p = path.join(tmp, 'lazy.safetensors');
    const a = randomF32(31, 9);
    await writeSafetensors(p, [
      { name: 'b', dtype: 'BF16', shape: [31], data: async () => (calls.push('b'), f32ArrayToBf16(a)) },
      { name: 'a', dtype: 'F32', shape: [31], data: () => (calls.push('a'), a) },
    ]);
    expect(calls).toEqual(['a', 'b']);
    const f = SafetensorsFile.open(p);
    expect([...f.readF32('a')]).toEqual([...a]);
    expect([...f.readBf16('b')]).toEqual([...f32ArrayToBf16(a)]);
    f.close();
  });

  it('rejects bad tensors without leaving a file behind', async () => {
    const p = path.join(tmp, 'bad-write.safetensors');
    await expectUserErrorAsync(writeSafetensors(p, [{ name: 'w', dtype: 'F32', shape: [3, 5], data: new Float32Array(14) }]), p, /w has shape \[3,5\] \(15 elements\) but 14 values/);
    await expectUserErrorAsync(writeSafetensors(p, [{ name: 'w', dtype: 'BF16', shape: [2], data: new Float32Array(2) }]), p, /w is BF16 but its data is a Float32Array/);
    await expectUserErrorAsync(writeSafetensors(p, [
      { name: 'w', dtype: 'F32', shape: [2], data: new Float32Array(2) },
      { name: 'w', dtype: 'F32', shape: [2], data: new Float32Array(2) },
    ]), p, /tensor w given twice/);
    expect(existsSync(p)).toBe(false);
    expect(readdirSync(tmp).filter((n) => n.startsWith('bad-write'))).toEqual([]);
  });
});

describe('the PyTorch-written fixture (test/fixtures/make_llama_fixture.py)', () => {
  it('reads the same numbers the script wrote', () => {
    const f = SafetensorsFile.open(path.join(FIXTURE, 'model.safetensors'));
    try {
      expect(f.metadata).toEqual({ format: 'pt' });
      expect(new Set(f.names())).toEqual(new Set(Object.keys(golden.weights)));
      for (const [name, w] of Object.entries(golden.weights)) {
        const t = f.readTensor(name);
        expect(t.dtype).toBe('F32');
        expect(t.shape).toEqual(w.shape);
        const x = f.readF32(name);
        let sum = 0, abs = 0;
        for (const v of x) {
          sum += v;
          abs += Math.abs(v);
        }
        // float64 sums of the same f32 values; only the summation order differs.
        expect(Math.abs(sum - w.sum)).toBeLessThan(1e-9 * w.abs_sum);
        expect(Math.abs(abs - w.abs_sum)).toBeLessThan(1e-9 * w.abs_sum);
        expect([...x.subarray(0, 6)]).toEqual(w.first.map(Math.fround));
        const b = f.readBf16(name);
        expect([...b.subarray(0, 6)]).toEqual(w.bf16_first);
        expect(b.reduce((a, v) => a + v, 0), `${name}: sum of bf16 bits vs torch`).toBe(w.bf16_bits_sum);
      }
    } finally {
      f.close();
    }
  });
});

describe('sharded checkpoints', () => {
  const tensors = (): TensorToWrite[] => Array.from({ length: 7 }, (_, i) => ({
    name: `model.layers.${i}.w`, dtype: i % 2 ? 'BF16' : 'F32', shape: [5 + i, 3],
    data: i % 2 ? f32ArrayToBf16(randomF32((5 + i) * 3, 10 + i)) : randomF32((5 + i) * 3, 10 + i),
  }) as TensorToWrite);

  it('splits by size, writes the HF index, and reads every tensor back', async () => {
    const dir = path.join(tmp, 'sharded');
    mkdirSync(dir);
    const ts = tensors();
    const files = await writeSafetensorsSharded(dir, ts, { maxShardBytes: 200 });
    const shards = files.filter((f) => f !== INDEX_FILE);
    expect(shards.length).toBeGreaterThan(2);
    expect(shards).toEqual(shards.map((_, i) => shardFileName(i, shards.length)));
    expect(shards[0]).toMatch(/^model-00001-of-0000\d\.safetensors$/);
    const index = JSON.parse(readFileSync(path.join(dir, INDEX_FILE), 'utf8'));
    const bytes = ts.reduce((a, t) => a + (t.data as Float32Array | Uint16Array).byteLength, 0);
    expect(index.metadata).toEqual({ total_size: bytes });
    expect(Object.keys(index.weight_map)).toEqual(ts.map((t) => t.name).sort());
    for (const s of shards) expect(statSync(path.join(dir, s)).size).toBeLessThan(200 + 400); // data <= 200 (+ header)

    const m = SafetensorsModel.open(dir);
    try {
      expect(m.source).toBe(path.join(dir, INDEX_FILE));
      expect(new Set(m.names())).toEqual(new Set(ts.map((t) => t.name)));
      for (const t of ts) {
        expect(path.basename(m.fileOf(t.name).path)).toBe(index.weight_map[t.name]);
        expect([...(m.readTensor(t.name).data as Float32Array)]).toEqual([...(t.data as Float32Array)]);
      }
      expectUserError(() => m.readF32('model.layers.3.mlp.up_proj.weight'), path.join(dir, INDEX_FILE), /^.*: missing tensor model\.layers\.3\.mlp\.up_proj\.weight$/);
    } finally {
      m.close();
    }

    // Saving again as one file replaces the shards and the index.
    await writeSafetensorsSharded(dir, ts);
    expect(readdirSync(dir).sort()).toEqual(['model.safetensors']);
    const single = SafetensorsModel.open(dir);
    expect(single.source).toBe(path.join(dir, 'model.safetensors'));
    expect(single.names().length).toBe(7);
    single.close();
  });

  it('reports a damaged index or a missing shard naming the index file', async () => {
    const dir = path.join(tmp, 'sharded-bad');
    mkdirSync(dir);
    await writeSafetensorsSharded(dir, tensors(), { maxShardBytes: 200 });
    const idx = path.join(dir, INDEX_FILE);
    const good = readFileSync(idx, 'utf8');
    const index = JSON.parse(good);

    writeFileSync(idx, good.slice(0, 40));
    expectUserError(() => SafetensorsModel.open(dir), idx, /invalid JSON/);

    writeFileSync(idx, JSON.stringify({ metadata: {} }));
    expectUserError(() => SafetensorsModel.open(dir), idx, /no "weight_map"/);

    writeFileSync(idx, JSON.stringify({ ...index, weight_map: { ...index.weight_map, 'extra.w': 'model-00009-of-00009.safetensors' } }));
    expectUserError(() => SafetensorsModel.open(dir), idx, /shard model-00009-of-00009\.safetensors is listed in weight_map but missing/);

    const first = index.weight_map['model.layers.0.w'];
    writeFileSync(idx, JSON.stringify({ ...index, weight_map: { ...index.weight_map, 'ghost.w': first } }));
    expectUserError(() => SafetensorsModel.open(dir), path.join(dir, first), /missing tensor ghost\.w \(listed in model\.safetensors\.index\.json\)/);

    writeFileSync(idx, JSON.stringify({ ...index, weight_map: { ...index.weight_map, 'model.layers.0.w': index.weight_map['model.layers.6.w'] } }));
    expectUserError(() => SafetensorsModel.open(dir), idx, /weight_map puts model\.layers\.0\.w in .* but it is in /);

    writeFileSync(idx, JSON.stringify({ ...index, weight_map: { ...index.weight_map, 'model.layers.0.w': '../x.safetensors' } }));
    expectUserError(() => SafetensorsModel.open(dir), idx, /expected a shard file name/);
  });

  it('names the directory when there is no checkpoint in it', () => {
    const dir = path.join(tmp, 'empty-dir');
    mkdirSync(dir);
    expectUserError(() => SafetensorsModel.open(dir), dir, /no model\.safetensors or model\.safetensors\.index\.json/);
    expectUserError(() => SafetensorsModel.open(path.join(tmp, 'nope')), path.join(tmp, 'nope'), /cannot open \(ENOENT\)/);
  });
});

describe('damaged files: one-line UserError naming the file', () => {
  const okEntry = '"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}';
  const data24 = new Uint8Array(24);

  it('too short, absurd or truncated header', () => {
    const p = path.join(tmp, 'short.safetensors');
    writeFileSync(p, Buffer.from([1, 2, 3]));
    expectUserError(() => SafetensorsFile.open(p), p, /truncated \(3 bytes/);
    const huge = rawFile('huge.safetensors', `{${okEntry}}`, data24, 1n << 40n);
    expectUserError(() => SafetensorsFile.open(huge), huge, /corrupt header \(header length 1099511627776 is over/);
    const cut = rawFile('cut-header.safetensors', `{${okEntry}}`.slice(0, 20), new Uint8Array(0), 64n);
    expectUserError(() => SafetensorsFile.open(cut), cut, /truncated \(header says 64 bytes of JSON header, file has 20/);
    expectUserError(() => SafetensorsFile.open(path.join(tmp, 'missing.safetensors')), path.join(tmp, 'missing.safetensors'), /cannot open \(ENOENT\)/);
  });

  it('bad JSON, bad UTF-8, not an object', () => {
    const bad = rawFile('badjson.safetensors', `{${okEntry},}`, data24);
    expectUserError(() => SafetensorsFile.open(bad), bad, /corrupt header \(invalid JSON/);
    const p = path.join(tmp, 'badutf8.safetensors');
    const hdr = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]); // {"\xff\xfe":1}
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hdr.length));
    writeFileSync(p, Buffer.concat([len, hdr]));
    expectUserError(() => SafetensorsFile.open(p), p, /corrupt header \(not valid UTF-8\)/);
    const arr = rawFile('array.safetensors', '[1,2,3]   ');
    expectUserError(() => SafetensorsFile.open(arr), arr, /corrupt header \(does not start with '\{'/);
  });

  it('entries: missing fields, unknown dtype, wrong sizes, bad metadata', () => {
    const cases: [string, string, RegExp][] = [
      ['nooffs', '{"w":{"dtype":"F32","shape":[2,3]}}', /tensor w lacks data_offsets/],
      ['nodtype', '{"w":{"shape":[2,3],"data_offsets":[0,24]}}', /tensor w lacks dtype/],
      ['dtype', '{"w":{"dtype":"F4","shape":[2,3],"data_offsets":[0,24]}}', /unknown dtype "F4" for tensor w/],
      ['shape', '{"w":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]}}', /tensor w has shape \[2,-3\]/],
      ['offs', '{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}}', /data_offsets \[24,0\]/],
      ['size', '{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]},"v":{"dtype":"U8","shape":[4],"data_offsets":[20,24]}}', /tensor w: F32 \[2,3\] needs 24 bytes, data_offsets \[0,20\] hold 20/],
      ['meta', `{"__metadata__":{"format":1},${okEntry}}`, /__metadata__\.format is not a string/],
      ['entry', `{"w":[1,2]}`, /entry w is not an object/],
    ];
    for (const [n, h, re] of cases) {
      const p = rawFile(`entry-${n}.safetensors`, h, data24);
      expectUserError(() => SafetensorsFile.open(p), p, re);
    }
  });

  it('overlapping offsets, truncated data, stray bytes', () => {
    const ov = rawFile('overlap.safetensors',
      '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}', data24);
    expectUserError(() => SafetensorsFile.open(ov), ov, /tensors a \[0,16\) and b \[8,24\) overlap/);
    const tr = rawFile('truncated.safetensors', `{${okEntry}}`, new Uint8Array(23));
    const hdrLen = `{${okEntry}}`.length;
    expectUserError(() => SafetensorsFile.open(tr), tr, new RegExp(`truncated \\(header says tensor data ends at byte ${8 + hdrLen + 24}, file has ${8 + hdrLen + 23} bytes\\)`));
    const st = rawFile('stray.safetensors', `{${okEntry}}`, new Uint8Array(30));
    expectUserError(() => SafetensorsFile.open(st), st, /corrupt \(6 stray bytes after the last tensor/);
  });

  it('missing tensor; reading a non-float tensor as floats', () => {
    const p = rawFile('ints.safetensors', '{"ids":{"dtype":"I64","shape":[3],"data_offsets":[0,24]}}', new Uint8Array(24).fill(1));
    const f = SafetensorsFile.open(p);
    try {
      expect(f.readTensor('ids').data).toBeInstanceOf(BigInt64Array);
      expectUserError(() => f.readTensor('model.layers.3.mlp.up_proj.weight'), p, /^.*: missing tensor model\.layers\.3\.mlp\.up_proj\.weight$/);
      expectUserError(() => f.readF32('ids'), p, /tensor ids is I64, expected a float tensor/);
    } finally {
      f.close();
    }
  });
});

describe('large files', () => {
  it('reads a tensor stored past 4 GiB without reading the rest (sparse file)', () => {
    const p = path.join(tmp, 'big.safetensors');
    const big = 5 * 2 ** 30; // 5 GiB of U8 before the tensor we read
    const header = `{"big":{"dtype":"U8","shape":[${big}],"data_offsets":[0,${big}]},"small":{"dtype":"F32","shape":[3],"data_offsets":[${big},${big + 12}]}}`;
    const h = Buffer.from(header + ' '.repeat((8 - (header.length % 8)) % 8));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    writeFileSync(p, Buffer.concat([len, h]));
    const dataStart = 8 + h.length;
    truncateSync(p, dataStart + big + 12); // sparse: no disk blocks for the 5 GiB
    const small = new Float32Array([1.5, -2.25, 3e-3]);
    const fd = openSync(p, 'r+');
    writeSync(fd, new Uint8Array(small.buffer), 0, 12, dataStart + big);
    closeSync(fd);
    try {
      const f = SafetensorsFile.open(p);
      expect(f.info('big').end).toBe(big);
      expect([...f.readF32('small')]).toEqual([...small]);
      f.close();
    } finally {
      rmSync(p);
    }
  });
});
