// The PyTorch .bin reader (src/formats/torch-bin.ts) on files torch.save wrote
// (test/fixtures/make_torch_bin_fixture.py): the same tensors as the safetensors of the same weights,
// in f32 / f16 shards / bf16 views, through the loaders every command uses; and the restricted pickle
// VM refusing what torch.save does not write (a GLOBAL os.system, a REDUCE of another callable, a
// foreign BUILD, strided views, compressed or truncated archives), each as one line naming the file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsModel } from '../src/formats/safetensors.ts';
import { TorchBinFile, TorchBinModel } from '../src/formats/torch-bin.ts';
import { openWeights } from '../src/formats/weights-source.ts';
import { loadLlamaConfig, loadLlamaWeightsCpu } from '../src/formats/hf-checkpoint.ts';
import { f32ArrayToBf16, f32ArrayToF16 } from '../src/util/bf16.ts';
import { expectUserError } from './util/user-error.ts';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'torch-bin');
const ref = SafetensorsModel.open(path.join(FIX, 'reference.safetensors'));
afterAll(() => ref.close());

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'wgpu-char-tb-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('reading torch.save checkpoints', () => {
  it('f32 single file (a Module.state_dict with _metadata and inv_freq buffers) reads as the reference, bit for bit', () => {
    const m = TorchBinModel.open(path.join(FIX, 'f32'));
    try {
      expect(m.source).toBe(path.join(FIX, 'f32', 'pytorch_model.bin'));
      expect(m.names().filter((n) => !n.endsWith('inv_freq')).sort()).toEqual(ref.names().sort());
      expect(m.has('model.layers.1.self_attn.rotary_emb.inv_freq')).toBe(true);
      for (const n of ref.names()) {
        expect(m.info(n).shape, n).toEqual(ref.info(n).shape);
        expect(m.info(n).dtype).toBe('F32');
        expect(m.readF32(n), n).toEqual(ref.readF32(n));
      }
    } finally {
      m.close();
    }
  });

  it('f16 in two shards + index reads as the reference rounded to f16', () => {
    const m = TorchBinModel.open(path.join(FIX, 'f16-sharded'));
    try {
      expect(m.source).toBe(path.join(FIX, 'f16-sharded', 'pytorch_model.bin.index.json'));
      expect(new Set(m.names().map((n) => path.basename(m.fileOf(n).path))).size).toBe(2);
      for (const n of ref.names()) {
        const t = m.readTensor(n);
        expect(t.dtype).toBe('F16');
        expect(t.data, n).toEqual(f32ArrayToF16(ref.readF32(n)));
      }
    } finally {
      m.close();
    }
  });

  it('bf16 with q/k/v as offset views of one storage reads as the reference rounded to bf16', () => {
    const m = TorchBinModel.open(path.join(FIX, 'bf16', 'pytorch_model.bin'));
    try {
      const q = m.info('model.layers.0.self_attn.q_proj.weight');
      const k = m.info('model.layers.0.self_attn.k_proj.weight');
      expect(k.key).toBe(q.key);
      expect(k.fileOffset).toBe(q.fileOffset + q.nbytes);
      for (const n of ref.names()) expect(m.readBf16(n), n).toEqual(f32ArrayToBf16(ref.readF32(n)));
    } finally {
      m.close();
    }
  });

  it('the loaders of every command read .bin directories as they read safetensors ones', () => {
    const dir = path.join(FIX, 'f32');
    const cfg = loadLlamaConfig(dir);
    const w = loadLlamaWeightsCpu(dir, cfg, { dtype: 'f32' });
    expect(w.size).toBe(ref.names().length);
    for (const [n, t] of w) expect(t.data, n).toEqual(ref.readF32(n));
    const h = loadLlamaWeightsCpu(path.join(FIX, 'f16-sharded'), loadLlamaConfig(path.join(FIX, 'f16-sharded')), { dtype: 'bf16' });
    expect(h.get('lm_head.weight')!.shape).toEqual([16, 8]);
    // Safetensors win over .bin in one directory, as in transformers.
    const both = path.join(tmp, 'both');
    mkdirSync(both);
    copyFileSync(path.join(FIX, 'f32', 'pytorch_model.bin'), path.join(both, 'pytorch_model.bin'));
    copyFileSync(path.join(FIX, 'reference.safetensors'), path.join(both, 'model.safetensors'));
    const src = openWeights(both);
    expect(src.source).toBe(path.join(both, 'model.safetensors'));
    src.close();
    expectUserError(() => openWeights(tmp), tmp, /no model\.safetensors, model\.safetensors\.index\.json, pytorch_model\.bin or pytorch_model\.bin\.index\.json/);
  });
});

// ------------------------------------------------------------------------------------------------
// Hand-made archives: a STORED zip writer and a few pickle opcodes, to build what torch.save never writes.

function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/**
 * A STORED zip; `zip64` writes it as a writer does past 4 GiB: 0xffffffff in the central directory's
 * sizes and offsets with the real values in a ZIP64 extra field, 0xffff/0xffffffff in the end record,
 * and a ZIP64 end record + locator.
 */
function zip(entries: [string, Uint8Array][], method = 0, zip64 = false): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let off = 0;
  for (const [name, data] of entries) {
    const n = Buffer.from(name);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(method, 8);
    h.writeUInt32LE(crc32(data), 14);
    h.writeUInt32LE(data.length, 18);
    h.writeUInt32LE(data.length, 22);
    h.writeUInt16LE(n.length, 26);
    locals.push(h, n, Buffer.from(data));
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc32(data), 16);
    c.writeUInt32LE(zip64 ? 0xffffffff : data.length, 20);
    c.writeUInt32LE(zip64 ? 0xffffffff : data.length, 24);
    c.writeUInt16LE(n.length, 28);
    c.writeUInt32LE(zip64 ? 0xffffffff : off, 42);
    if (zip64) {
      const x = Buffer.alloc(28);
      x.writeUInt16LE(0x0001, 0);
      x.writeUInt16LE(24, 2);
      x.writeBigUInt64LE(BigInt(data.length), 4); // uncompressed, compressed, local header offset
      x.writeBigUInt64LE(BigInt(data.length), 12);
      x.writeBigUInt64LE(BigInt(off), 20);
      c.writeUInt16LE(x.length, 30);
      central.push(c, n, x);
    } else {
      central.push(c, n);
    }
    off += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(central);
  const e = Buffer.alloc(22);
  e.writeUInt32LE(0x06054b50, 0);
  e.writeUInt16LE(zip64 ? 0xffff : entries.length, 8);
  e.writeUInt16LE(zip64 ? 0xffff : entries.length, 10);
  e.writeUInt32LE(zip64 ? 0xffffffff : cd.length, 12);
  e.writeUInt32LE(zip64 ? 0xffffffff : off, 16);
  if (!zip64) return Buffer.concat([...locals, cd, e]);
  const rec = Buffer.alloc(56);
  rec.writeUInt32LE(0x06064b50, 0);
  rec.writeBigUInt64LE(44n, 4);
  rec.writeBigUInt64LE(BigInt(entries.length), 24);
  rec.writeBigUInt64LE(BigInt(entries.length), 32);
  rec.writeBigUInt64LE(BigInt(cd.length), 40);
  rec.writeBigUInt64LE(BigInt(off), 48);
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0);
  loc.writeBigUInt64LE(BigInt(off + cd.length), 8);
  loc.writeUInt32LE(1, 16);
  return Buffer.concat([...locals, cd, rec, loc, e]);
}

const P = {
  proto: Buffer.from([0x80, 2]),
  global: (m: string, n: string) => Buffer.from(`c${m}\n${n}\n`, 'latin1'),
  str: (s: string) => {
    const b = Buffer.from(s);
    const h = Buffer.alloc(5);
    h[0] = 0x58;
    h.writeUInt32LE(b.length, 1);
    return Buffer.concat([h, b]);
  },
  int: (n: number) => Buffer.from([0x4b, n]),
  mark: Buffer.from('('),
  tuple: Buffer.from('t'),
  emptyTuple: Buffer.from(')'),
  emptyDict: Buffer.from('}'),
  reduce: Buffer.from('R'),
  build: Buffer.from('b'),
  setitem: Buffer.from('s'),
  persid: Buffer.from('Q'),
  false: Buffer.from([0x89]),
  stop: Buffer.from('.'),
};

/** A state dict {w: tensor(storage '0', offset, size, stride)} of a FloatStorage of `numel` elements. */
function tensorPickle(size: number[], stride: number[], offset = 0, numel = 6): Buffer {
  const ints = (xs: number[]) => Buffer.concat([P.mark, ...xs.map(P.int), P.tuple]);
  return Buffer.concat([
    P.proto, P.emptyDict, P.str('w'),
    P.global('torch._utils', '_rebuild_tensor_v2'), P.mark,
    P.mark, P.str('storage'), P.global('torch', 'FloatStorage'), P.str('0'), P.str('cpu'), P.int(numel), P.tuple, P.persid,
    P.int(offset), ints(size), ints(stride), P.false, P.global('collections', 'OrderedDict'), P.emptyTuple, P.reduce,
    P.tuple, P.reduce, P.setitem, P.stop,
  ]);
}

function archive(name: string, pkl: Buffer, storages: [string, Uint8Array][] = [['0', new Uint8Array(24)]], method = 0, zip64 = false): string {
  const file = path.join(tmp, name);
  writeFileSync(file, zip([['archive/data.pkl', pkl], ...storages.map(([k, d]): [string, Uint8Array] => [`archive/data/${k}`, d])], method, zip64));
  return file;
}

describe('the restricted unpickler', () => {
  it('reads a hand-made archive (the test writer agrees with torch.save\'s format)', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const f = TorchBinFile.open(archive('ok.bin', tensorPickle([2, 2], [2, 1], 2), [['0', new Uint8Array(data.buffer)]]));
    expect(f.info('w').shape).toEqual([2, 2]);
    expect([...f.readF32('w')]).toEqual([3, 4, 5, 6]);
    f.close();
    // The same archive with ZIP64 records, as torch.save writes shards past 4 GiB (a 7B model's).
    const f64 = TorchBinFile.open(archive('zip64.bin', tensorPickle([2, 2], [2, 1], 2), [['0', new Uint8Array(data.buffer)]], 0, true));
    expect([...f64.readF32('w')]).toEqual([3, 4, 5, 6]);
    f64.close();
  });

  it('refuses a GLOBAL os.system before anything could run', () => {
    const pkl = Buffer.concat([P.proto, P.global('os', 'system'), P.mark, P.str('touch /tmp/pwned'), P.tuple, P.reduce, P.stop]);
    const file = archive('os-system.bin', pkl);
    expectUserError(() => TorchBinFile.open(file), file, /refusing pickle GLOBAL os\.system .*never executes pickled code/);
  });

  it('refuses a REDUCE of an allowed global that is not a callable torch.save uses', () => {
    const pkl = Buffer.concat([P.proto, P.global('torch', 'FloatStorage'), P.emptyTuple, P.reduce, P.stop]);
    const file = archive('reduce.bin', pkl);
    expectUserError(() => TorchBinFile.open(file), file, /refusing REDUCE of torch\.FloatStorage/);
    const args = Buffer.concat([P.proto, P.global('collections', 'OrderedDict'), P.mark, P.str('x'), P.tuple, P.reduce, P.stop]);
    const file2 = archive('reduce-args.bin', args);
    expectUserError(() => TorchBinFile.open(file2), file2, /refusing REDUCE collections\.OrderedDict with arguments/);
  });

  it('refuses a BUILD other than state_dict\'s _metadata, and unknown opcodes', () => {
    const pkl = Buffer.concat([P.proto, P.emptyDict, P.emptyDict, P.str('__class__'), P.int(1), P.setitem, P.build, P.stop]);
    const file = archive('build.bin', pkl);
    expectUserError(() => TorchBinFile.open(file), file, /refusing BUILD of a dict with a dict/);
    const inst = Buffer.concat([P.proto, Buffer.from('ios\nsystem\n', 'latin1'), P.stop]); // INST
    const file2 = archive('inst.bin', inst);
    expectUserError(() => TorchBinFile.open(file2), file2, /refusing pickle opcode 0x69 at byte 2/);
  });

  it('refuses non-contiguous strides, views past their storage, missing storages', () => {
    const t = archive('transposed.bin', tensorPickle([2, 3], [1, 2]));
    expectUserError(() => TorchBinFile.open(t), t, /tensor w of size \[2,3\] has stride \[1,2\], not contiguous/);
    const past = archive('past.bin', tensorPickle([2, 3], [3, 1], 1));
    expectUserError(() => TorchBinFile.open(past), past, /tensor w \(offset 1, 6 elements\) runs past its storage 0 \(6 elements\)/);
    const missing = archive('missing.bin', tensorPickle([6], [1]), []);
    expectUserError(() => TorchBinFile.open(missing), missing, /storage 0 is missing \(no archive\/data\/0 entry\)/);
    const short = archive('short.bin', tensorPickle([6], [1]), [['0', new Uint8Array(20)]]);
    expectUserError(() => TorchBinFile.open(short), short, /storage 0 has 20 bytes, its 6 F32 elements need 24/);
  });

  it('refuses truncated and compressed archives', () => {
    const whole = readFileSync(path.join(FIX, 'f32', 'pytorch_model.bin'));
    const cut = path.join(tmp, 'cut.bin');
    writeFileSync(cut, whole.subarray(0, whole.length >> 1));
    expectUserError(() => TorchBinFile.open(cut), cut, /no end-of-central-directory record: truncated/);
    const deflated = archive('deflated.bin', tensorPickle([6], [1]), undefined, 8);
    expectUserError(() => TorchBinFile.open(deflated), deflated, /zip entry archive\/data\.pkl is compressed \(method 8\)/);
    const empty = path.join(tmp, 'empty.bin');
    writeFileSync(empty, '');
    expectUserError(() => TorchBinFile.open(empty), empty, /not a torch\.save zip archive/);
  });
});
