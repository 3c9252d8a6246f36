/**
 * A streaming writer of GGUF v3 files (the single-file model format of llama.cpp, Ollama and LM
 * Studio), written from ggml's GGUF specification, and the tensor encodings we export in: F32, F16,
 * BF16 and Q8_0.
 *
 * Layout (all little-endian):
 *   magic "GGUF" (4 bytes), u32 version = 3, u64 tensor_count, u64 metadata_kv_count;
 *   metadata_kv_count × { string key, u32 value_type, value };
 *   tensor_count × { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset };
 *   zero padding to `general.alignment` (32 when absent), then the tensor data, each tensor at its
 *   offset (relative to the start of the data section, a multiple of the alignment).
 * A string is u64 byte length + UTF-8 bytes (no terminator); an array is u32 item type, u64 count,
 * items. ne is ggml's order, innermost (contiguous) dimension first: a PyTorch [out, in] weight is
 * ne = [in, out].
 *
 * Why streaming: every tensor's size is known from its shape and type before any data is produced,
 * so the header (with all offsets) is written first and each tensor's bytes are produced, written
 * and dropped one at a time; a 7B never sits in host memory whole. The file is written under a temp
 * name and renamed into place when complete, so a failed export leaves no half file.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { tempPathFor } from '../util/atomic.ts';
import { f32ArrayToBf16, f32ArrayToF16, f32BitsToF16Bits, f32Bits } from '../util/bf16.ts';

export const GGUF_MAGIC = 'GGUF';
export const GGUF_VERSION = 3;
/** The data section's alignment we write (ggml's default; also written as general.alignment). */
export const GGUF_ALIGNMENT = 32;

/** GGUF metadata value types (the u32 before each value). */
export const GgufValueType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;

/** The ggml tensor types we write, by their number in ggml's enum. */
export const GgmlType = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GgmlType;

/** Q8_0: blocks of 32 values along a row, each an f16 scale then 32 int8 quants (34 bytes). */
export const Q8_0_BLOCK = 32;
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK;

/** A metadata value with its GGUF type. Arrays hold scalars or strings of one type. */
export type GgufValue =
  | { type: 'u32' | 'i32' | 'f32' | 'u64'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: 'string'; value: readonly string[] }
  | { type: 'array'; itemType: 'f32' | 'i32' | 'u32'; value: ArrayLike<number> };

export interface GgufKv {
  key: string;
  value: GgufValue;
}

export interface GgufTensorToWrite {
  name: string;
  /** PyTorch (row-major, outermost first) shape; written reversed, as ggml's ne. */
  shape: readonly number[];
  type: GgmlTypeName;
  /** Produces the tensor's encoded bytes (exactly ggufTensorBytes of them); called once, in order. */
  data: () => Uint8Array;
}

/** Bytes of a tensor of `shape` stored as `type`; Q8_0 needs rows (the last dimension) in whole blocks. */
export function ggufTensorBytes(shape: readonly number[], type: GgmlTypeName): number {
  const n = shape.reduce((a, b) => a * b, 1);
  switch (type) {
    case 'F32': return 4 * n;
    case 'F16': case 'BF16': return 2 * n;
    case 'Q8_0': {
      const row = shape[shape.length - 1] ?? 1;
      if (row % Q8_0_BLOCK !== 0) throw new Error(`Q8_0 needs rows that are multiples of ${Q8_0_BLOCK} values, got shape [${shape.join(',')}]`);
      return (n / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
    }
  }
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** Appends little-endian values to a growing list of chunks (the header: a few MB at most, for 32k-token vocabularies). */
class ByteSink {
  private chunks: Uint8Array[] = [];
  private scratch = new DataView(new ArrayBuffer(8));
  length = 0;

  bytes(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  private fixed(n: number, set: (v: DataView) => void): void {
    set(this.scratch);
    this.bytes(new Uint8Array(this.scratch.buffer.slice(0, n)));
  }
  u8(v: number): void { this.fixed(1, (d) => d.setUint8(0, v)); }
  u32(v: number): void { this.fixed(4, (d) => d.setUint32(0, v, true)); }
  i32(v: number): void { this.fixed(4, (d) => d.setInt32(0, v, true)); }
  f32(v: number): void { this.fixed(4, (d) => d.setFloat32(0, v, true)); }
  u64(v: number): void { this.fixed(8, (d) => d.setBigUint64(0, BigInt(v), true)); }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.bytes(b);
  }
  /** A typed array's bytes at once (the scores and token types of a vocabulary). */
  numbers(type: 'f32' | 'i32' | 'u32', values: ArrayLike<number>): void {
    const a = type === 'f32' ? Float32Array.from(values) : type === 'i32' ? Int32Array.from(values) : Uint32Array.from(values);
    this.bytes(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  concat(): Uint8Array {
    return Buffer.concat(this.chunks, this.length);
  }
}

const SCALAR_TYPE = { u32: GgufValueType.UINT32, i32: GgufValueType.INT32, f32: GgufValueType.FLOAT32, u64: GgufValueType.UINT64 } as const;

function writeValue(s: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case 'u32': s.u32(GgufValueType.UINT32); s.u32(v.value); return;
    case 'i32': s.u32(GgufValueType.INT32); s.i32(v.value); return;
    case 'f32': s.u32(GgufValueType.FLOAT32); s.f32(v.value); return;
    case 'u64': s.u32(GgufValueType.UINT64); s.u64(v.value); return;
    case 'bool': s.u32(GgufValueType.BOOL); s.u8(v.value ? 1 : 0); return;
    case 'string': s.u32(GgufValueType.STRING); s.string(v.value); return;
    case 'array':
      s.u32(GgufValueType.ARRAY);
      if (v.itemType === 'string') {
        s.u32(GgufValueType.STRING);
        s.u64(v.value.length);
        for (const x of v.value) s.string(x);
      } else {
        s.u32(SCALAR_TYPE[v.itemType]);
        s.u64(v.value.length);
        s.numbers(v.itemType, v.value);
      }
  }
}

/** The header (everything before the data section, padding included) and each tensor's offset. */
export function encodeGgufHeader(kvs: readonly GgufKv[], tensors: readonly Omit<GgufTensorToWrite, 'data'>[]): { header: Uint8Array; offsets: number[]; dataBytes: number } {
  const keys = new Set<string>();
  for (const kv of kvs) {
    if (keys.has(kv.key)) throw new Error(`GGUF: duplicate metadata key ${kv.key}`);
    keys.add(kv.key);
  }
  const s = new ByteSink();
  s.bytes(Buffer.from(GGUF_MAGIC, 'latin1'));
  s.u32(GGUF_VERSION);
  s.u64(tensors.length);
  s.u64(kvs.length);
  for (const kv of kvs) {
    s.string(kv.key);
    writeValue(s, kv.value);
  }
  const offsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    s.string(t.name);
    s.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) s.u64(t.shape[d]!);
    s.u32(GgmlType[t.type]);
    s.u64(offset);
    offsets.push(offset);
    offset = alignUp(offset + ggufTensorBytes(t.shape, t.type), GGUF_ALIGNMENT);
  }
  const pad = alignUp(s.length, GGUF_ALIGNMENT) - s.length;
  if (pad) s.bytes(new Uint8Array(pad));
  return { header: s.concat(), offsets, dataBytes: offset };
}

function writeAll(fd: number, b: Uint8Array): void {
  let done = 0;
  while (done < b.length) done += writeSync(fd, b, done, Math.min(b.length - done, 1 << 30));
}

/**
 * Writes a GGUF file: header, then each tensor's data as `data()` produces it (one at a time),
 * padded to the alignment. Written to a temp file beside `file`, then renamed; an output that
 * cannot be written is one UserError naming it. Returns the file's size in bytes.
 */
export function writeGguf(file: string, kvs: readonly GgufKv[], tensors: readonly GgufTensorToWrite[]): number {
  const { header, offsets, dataBytes } = encodeGgufHeader(kvs, tensors);
  const tmp = tempPathFor(file);
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw new UserError(`${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    writeAll(fd, header);
    let at = 0;
    tensors.forEach((t, i) => {
      const pad = offsets[i]! - at;
      if (pad) writeAll(fd, new Uint8Array(pad));
      const bytes = t.data();
      const expected = ggufTensorBytes(t.shape, t.type);
      if (bytes.length !== expected) throw new Error(`GGUF: tensor ${t.name} produced ${bytes.length} bytes, its shape and type need ${expected}`);
      writeAll(fd, bytes);
      at = offsets[i]! + bytes.length;
    });
    if (dataBytes > at) writeAll(fd, new Uint8Array(dataBytes - at));
    fsyncSync(fd);
    closeSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code) throw new UserError(`${file}: cannot write (${code})`);
    throw e;
  }
  renameSync(tmp, file);
  return header.length + dataBytes;
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Q8_0 encoding of `x` (rows of a multiple of 32 values), as ggml's reference quantizer does it, in
 * f32 arithmetic: per block d = max|x| / 127, the scale stored as f16(d); quants round(x · (1/d))
 * with halves away from zero, computed with the unrounded f32 d (0 quants when d = 0).
 */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  if (x.length % Q8_0_BLOCK !== 0) throw new Error(`quantizeQ8_0: ${x.length} values are not whole blocks of ${Q8_0_BLOCK}`);
  const nb = x.length / Q8_0_BLOCK;
  const out = new Uint8Array(nb * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  const f = Math.fround;
  for (let b = 0; b < nb; b++) {
    const base = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(x[base + j]!));
    const d = f(amax / 127);
    const id = d !== 0 ? f(1 / d) : 0;
    const o = b * Q8_0_BLOCK_BYTES;
    view.setUint16(o, f32BitsToF16Bits(f32Bits(d)), true);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const v = f(x[base + j]! * id);
      // C's roundf: halves away from zero (Math.round would take -2.5 to -2).
      const q = Math.sign(v) * Math.round(Math.abs(v));
      view.setInt8(o + 2 + j, q);
    }
  }
  return out;
}

/** `x` (f32 values) encoded as `type`'s bytes: F32 as is, F16/BF16 rounded to nearest even, Q8_0 quantized. */
export function encodeTensor(x: Float32Array, type: GgmlTypeName): Uint8Array {
  switch (type) {
    case 'F32': return bytesOf(x);
    case 'F16': return bytesOf(f32ArrayToF16(x));
    case 'BF16': return bytesOf(f32ArrayToBf16(x));
    case 'Q8_0': return quantizeQ8_0(x);
  }
}
