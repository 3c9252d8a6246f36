/**
 * A small streaming reader/writer for the safetensors format (HF model weights).
 *
 * Why not npm `safetensors` (0.0.1): it is a 2 KB browser reader that ignores a Buffer's byte offset
 * (fails on `readFileSync` buffers), crashes on the `__metadata__` entry every HF/PyTorch writer adds,
 * cannot write, cannot read files over 2 GB, and knows nothing of sharded checkpoints.
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte little-endian u64 N, then N bytes of
 * UTF-8 JSON `{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}`,
 * then the data section; offsets are relative to the start of the data section (byte 8 + N), data
 * is little-endian and C-ordered.
 *
 * Reader: never reads the whole file (7B shards are ~10 GB, past Buffer limits). It reads the header
 * with positional reads, validates it (header length, JSON, each entry's dtype/shape/offsets, sizes =
 * prod(shape) * itemsize, no overlap, data section neither truncated nor followed by junk), and reads
 * one tensor's byte range on demand.
 * Writer: mirrors the reference `safetensors.serialize_to_file`: tensors sorted by dtype alignment,
 * largest first (F32 before BF16 before F16), then by name; compact JSON with `__metadata__` first,
 * padded with spaces to a multiple of 8 bytes so every tensor starts 8-byte aligned in the file. It
 * streams tensor by tensor (data may be produced lazily, e.g. read back from the GPU) into a temp
 * file that is renamed into place when complete.
 * Sharded checkpoints: `model.safetensors.index.json` (`weight_map`: tensor name -> shard file) with
 * `model-00001-of-0000M.safetensors` shards, as transformers' `save_pretrained` writes them.
 *
 * Every error a user can cause is a UserError whose message starts with the file path.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readdirSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { openShards, ShardedTensors, withReadFd, type ShardFormat } from './sharded.ts';
import { tempPathFor, writeFileAtomic } from '../util/atomic.ts';
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16 } from '../util/bf16.ts';

/** safetensors dtypes, in the reference implementation's enum order (increasing alignment). */
export const DTYPES = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64'] as const;
export type Dtype = (typeof DTYPES)[number];

const ITEM_SIZE: Record<Dtype, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2, I32: 4, U32: 4, F32: 4, F64: 8, I64: 8, U64: 8,
};

/** Bytes per element of `dtype`. */
export function dtypeSize(dtype: Dtype): number {
  return ITEM_SIZE[dtype];
}

/** The reference rejects headers over 100 MB (a 7B index has ~300 tensors: a few tens of KB). */
export const MAX_HEADER_BYTES = 100_000_000;
/** readSync/writeSync take at most 2^31-1 bytes per call. */
const IO_CHUNK = 1 << 30;

/** One tensor's entry in a file header. `begin`/`end` are byte offsets relative to the data section. */
export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Raw tensor contents: F16/BF16 as their bits (Uint16Array), F8 and BOOL as bytes. */
export type TensorData =
  | Float32Array<ArrayBuffer> | Float64Array<ArrayBuffer> | Uint16Array<ArrayBuffer> | Int16Array<ArrayBuffer>
  | Int32Array<ArrayBuffer> | Uint32Array<ArrayBuffer> | BigInt64Array<ArrayBuffer> | BigUint64Array<ArrayBuffer>
  | Int8Array<ArrayBuffer> | Uint8Array<ArrayBuffer>;

export interface Tensor {
  dtype: Dtype;
  shape: number[];
  data: TensorData;
}

/** Number of elements of a tensor of this shape (1 for a scalar `[]`). */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkLittleEndian(file: string): void {
  if (endianness() !== 'LE') throw new UserError(`${file}: safetensors data is little-endian; this host is big-endian (not supported)`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function typedView(dtype: Dtype, buf: ArrayBuffer, byteOffset: number, n: number): TensorData {
  switch (dtype) {
    case 'F32': return new Float32Array(buf, byteOffset, n);
    case 'F64': return new Float64Array(buf, byteOffset, n);
    case 'F16': case 'BF16': case 'U16': return new Uint16Array(buf, byteOffset, n);
    case 'I16': return new Int16Array(buf, byteOffset, n);
    case 'I32': return new Int32Array(buf, byteOffset, n);
    case 'U32': return new Uint32Array(buf, byteOffset, n);
    case 'I64': return new BigInt64Array(buf, byteOffset, n);
    case 'U64': return new BigUint64Array(buf, byteOffset, n);
    case 'I8': return new Int8Array(buf, byteOffset, n);
    case 'U8': case 'BOOL': case 'F8_E5M2': case 'F8_E4M3': return new Uint8Array(buf, byteOffset, n);
  }
}

/** One open .safetensors file: header parsed and validated, tensors read on demand. Call close(). */
export class SafetensorsFile {
  /** `__metadata__` from the header (the reference writes `{format: 'pt'}`), or null if absent. */
  readonly metadata: Record<string, string> | null;
  /** Tensors in data-offset order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** File offset of the data section (8 + header length). */
  readonly dataStart: number;
  readonly fileSize: number;
  private fd: number | null;

  private constructor(readonly path: string, fd: number, fileSize: number, dataStart: number,
    metadata: Record<string, string> | null, tensors: Map<string, TensorInfo>) {
    this.fd = fd;
    this.fileSize = fileSize;
    this.dataStart = dataStart;
    this.metadata = metadata;
    this.tensors = tensors;
  }

  /** Opens and validates `filePath`; throws a UserError naming the file on any problem. */
  static open(filePath: string): SafetensorsFile {
    checkLittleEndian(filePath);
    return withReadFd(filePath, (fd) => {
      const fileSize = fstatSync(fd).size;
      const { metadata, tensors, dataStart } = parseHeader(filePath, fd, fileSize);
      return new SafetensorsFile(filePath, fd, fileSize, dataStart, metadata, tensors);
    });
  }

  /** Tensor names in data-offset order. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The header entry of `name`; UserError `<file>: missing tensor <name>` if absent. */
  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new UserError(`${this.path}: missing tensor ${name}`);
    return t;
  }

  /**
   * Reads `dst.length` bytes of tensor `name`, starting `byteOffset` bytes into its data, into `dst`
   * (for streaming a large tensor through a fixed staging buffer).
   */
  readBytesInto(name: string, dst: Uint8Array, byteOffset = 0): void {
    const t = this.info(name);
    if (byteOffset < 0 || byteOffset + dst.length > t.end - t.begin) {
      throw new RangeError(`${this.path}: bytes [${byteOffset}, ${byteOffset + dst.length}) are outside tensor ${name} (${t.end - t.begin} bytes)`);
    }
    this.readAt(dst, this.dataStart + t.begin + byteOffset);
  }

  /** Reads tensor `name` (just its byte range) as a typed array of its own dtype. */
  readTensor(name: string): Tensor {
    const t = this.info(name);
    const nbytes = t.end - t.begin;
    const buf = new ArrayBuffer(nbytes);
    this.readAt(new Uint8Array(buf), this.dataStart + t.begin);
    return { dtype: t.dtype, shape: [...t.shape], data: typedView(t.dtype, buf, 0, nbytes / ITEM_SIZE[t.dtype]) };
  }

  /** Tensor `name` as f32 values (from F32, F16, BF16 exactly; F64 rounded). */
  readF32(name: string): Float32Array<ArrayBuffer> {
    return tensorToF32(this.path, name, this.readTensor(name));
  }

  /** Tensor `name` as bf16 bits (from BF16 as is; F32, F16, F64 rounded to nearest even). */
  readBf16(name: string): Uint16Array<ArrayBuffer> {
    return tensorToBf16(this.path, name, this.readTensor(name));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private readAt(dst: Uint8Array, position: number): void {
    if (this.fd === null) throw new Error(`${this.path}: read after close()`);
    let done = 0;
    while (done < dst.length) {
      const len = Math.min(IO_CHUNK, dst.length - done);
      const got = readSync(this.fd, dst, done, len, position + done);
      if (got === 0) {
        throw new UserError(`${this.path}: truncated (file ended at byte ${position + done}, expected ${dst.length - done} more bytes; was it modified while open?)`);
      }
      done += got;
    }
  }
}

function readExact(file: string, fd: number, len: number, position: number): Buffer {
  const buf = Buffer.alloc(len);
  let done = 0;
  while (done < len) {
    const got = readSync(fd, buf, done, len - done, position + done);
    if (got === 0) throw new UserError(`${file}: truncated (file ended at byte ${position + done})`);
    done += got;
  }
  return buf;
}

function parseHeader(file: string, fd: number, fileSize: number):
  { metadata: Record<string, string> | null; tensors: Map<string, TensorInfo>; dataStart: number } {
  const fail = (msg: string): never => {
    throw new UserError(`${file}: ${msg}`);
  };
  if (fileSize < 8) fail(`truncated (${fileSize} bytes; a safetensors file starts with an 8-byte header length)`);
  const n64 = readExact(file, fd, 8, 0).readBigUInt64LE(0);
  if (n64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`corrupt header (header length ${n64} is over the ${MAX_HEADER_BYTES}-byte limit; not a safetensors file?)`);
  }
  const n = Number(n64);
  if (n < 2) fail(`corrupt header (header length ${n}; the JSON header needs at least 2 bytes)`);
  if (8 + n > fileSize) fail(`truncated (header says ${n} bytes of JSON header, file has ${fileSize - 8} after the length)`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(readExact(file, fd, n, 8));
  } catch (e) {
    if (e instanceof UserError) throw e;
    return fail('corrupt header (not valid UTF-8)');
  }
  if (text.trimStart()[0] !== '{') fail(`corrupt header (does not start with '{'; not a safetensors file?)`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`corrupt header (invalid JSON: ${(e as Error).message})`);
  }
  if (!isPlainObject(json)) return fail('corrupt header (JSON header is not an object)');

  let metadata: Record<string, string> | null = null;
  const entries: TensorInfo[] = [];
  for (const [name, v] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(v)) fail('corrupt header (__metadata__ is not an object)');
      const m = v as Record<string, unknown>;
      for (const [k, mv] of Object.entries(m)) {
        if (typeof mv !== 'string') fail(`corrupt header (__metadata__.${k} is not a string)`);
      }
      metadata = m as Record<string, string>;
      continue;
    }
    if (!isPlainObject(v)) return fail(`corrupt header (entry ${name} is not an object)`);
    const { dtype, shape, data_offsets: offs } = v;
    if (dtype === undefined || shape === undefined || offs === undefined) {
      fail(`corrupt header (tensor ${name} lacks ${['dtype', 'shape', 'data_offsets'].filter((k) => v[k] === undefined).join(', ')})`);
    }
    if (typeof dtype !== 'string' || !(DTYPES as readonly string[]).includes(dtype)) {
      fail(`unknown dtype ${JSON.stringify(dtype)} for tensor ${name} (known: ${DTYPES.join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      fail(`corrupt header (tensor ${name} has shape ${JSON.stringify(shape)}; expected an array of non-negative integers)`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isNonNegInt) || offs[0] > offs[1]) {
      fail(`corrupt header (tensor ${name} has data_offsets ${JSON.stringify(offs)}; expected [begin, end] with 0 <= begin <= end)`);
    }
    const [begin, end] = offs as [number, number];
    const info: TensorInfo = { name, dtype: dtype as Dtype, shape: shape as number[], begin, end };
    const nbytes = numel(info.shape) * ITEM_SIZE[info.dtype];
    if (!Number.isSafeInteger(nbytes)) fail(`corrupt header (tensor ${name} shape [${info.shape}] overflows)`);
    if (info.end - info.begin !== nbytes) {
      fail(`corrupt header (tensor ${name}: ${info.dtype} [${info.shape}] needs ${nbytes} bytes, data_offsets [${info.begin},${info.end}] hold ${info.end - info.begin})`);
    }
    entries.push(info);
  }

  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let dataEnd = 0;
  let prev: TensorInfo | null = null;
  for (const t of entries) {
    // Zero-size tensors occupy no bytes and cannot overlap anything.
    if (prev && t.end > t.begin && t.begin < prev.end) {
      fail(`corrupt header (tensors ${prev.name} [${prev.begin},${prev.end}) and ${t.name} [${t.begin},${t.end}) overlap)`);
    }
    if (t.end > t.begin) prev = t;
    dataEnd = Math.max(dataEnd, t.end);
  }
  const dataStart = 8 + n;
  if (dataStart + dataEnd > fileSize) {
    fail(`truncated (header says tensor data ends at byte ${dataStart + dataEnd}, file has ${fileSize} bytes)`);
  }
  if (dataStart + dataEnd < fileSize) {
    fail(`corrupt (${fileSize - dataStart - dataEnd} stray bytes after the last tensor: data ends at byte ${dataStart + dataEnd}, file has ${fileSize})`);
  }
  return { metadata, tensors: new Map(entries.map((t) => [t.name, t])), dataStart };
}

export function tensorToF32(file: string, name: string, t: Tensor): Float32Array<ArrayBuffer> {
  switch (t.dtype) {
    case 'F32': return t.data as Float32Array<ArrayBuffer>;
    case 'BF16': return bf16ArrayToF32(t.data as Uint16Array<ArrayBuffer>);
    case 'F16': return f16ArrayToF32(t.data as Uint16Array<ArrayBuffer>);
    case 'F64': return Float32Array.from(t.data as Float64Array);
    default: throw new UserError(`${file}: tensor ${name} is ${t.dtype}, expected a float tensor (F32, BF16, F16, F64)`);
  }
}

export function tensorToBf16(file: string, name: string, t: Tensor): Uint16Array<ArrayBuffer> {
  switch (t.dtype) {
    case 'BF16': return t.data as Uint16Array<ArrayBuffer>;
    case 'F32': return f32ArrayToBf16(t.data as Float32Array<ArrayBuffer>);
    case 'F16': return f32ArrayToBf16(f16ArrayToF32(t.data as Uint16Array<ArrayBuffer>));
    case 'F64': return f32ArrayToBf16(Float32Array.from(t.data as Float64Array)); // double rounding: F64 weights are rare
    default: throw new UserError(`${file}: tensor ${name} is ${t.dtype}, expected a float tensor (F32, BF16, F16, F64)`);
  }
}

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** HF shard name: `model-00001-of-00003.safetensors`. */
export function shardFileName(i: number, count: number): string {
  const pad = (k: number) => String(k).padStart(5, '0');
  return `model-${pad(i + 1)}-of-${pad(count)}.safetensors`;
}

/**
 * A model's tensors across one `model.safetensors` or the shards listed in
 * `model.safetensors.index.json` (the index wins when both exist, as in transformers).
 */
export class SafetensorsModel extends ShardedTensors<SafetensorsFile, TensorInfo> {
  private constructor(
    source: string,
    files: SafetensorsFile[],
    where: Map<string, SafetensorsFile>,
    /** Index `metadata` (transformers writes `{total_size}`), or null for a single file. */
    readonly indexMetadata: Record<string, unknown> | null,
  ) {
    super(source, files, where);
  }

  /** Opens a checkpoint directory (index + shards, or model.safetensors), or one .safetensors file. */
  static open(dirOrFile: string): SafetensorsModel {
    const s = openShards(dirOrFile, SAFETENSORS_FORMAT);
    return new SafetensorsModel(s.source, s.files, s.where, s.metadata);
  }
}

const SAFETENSORS_FORMAT: ShardFormat<SafetensorsFile> = {
  index: INDEX_FILE,
  single: SINGLE_FILE,
  directory: 'a HF safetensors checkpoint directory',
  indexKind: 'a safetensors index',
  openFile: (file) => SafetensorsFile.open(file),
};

// ------------------------------------------------------------------------------------------------
// Writer

export type WritableDtype = 'F32' | 'BF16' | 'F16';
export type WritableData = Float32Array | Uint16Array;

/**
 * A tensor to write. `data` is F32: Float32Array; BF16/F16: Uint16Array of bits. It may be a
 * function (sync or async) called when the tensor's turn comes, so a caller can stream tensors
 * (e.g. GPU readbacks) without holding them all in memory.
 */
export interface TensorToWrite {
  name: string;
  dtype: WritableDtype;
  shape: readonly number[];
  data: WritableData | (() => WritableData | Promise<WritableData>);
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The header bytes (length prefix included) and the write order, exactly as the reference
 * `safetensors` `prepare()` lays them out: sort by dtype (descending alignment, i.e. F32, BF16, F16),
 * then by name (bytewise); compact JSON, `__metadata__` first (omitted when empty); spaces up to a
 * multiple of 8 bytes.
 */
export function safetensorsHeader(file: string, tensors: readonly Omit<TensorToWrite, 'data'>[], metadata: Record<string, string>):
  { bytes: Uint8Array; order: number[]; dataBytes: number } {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === '' || t.name === '__metadata__') throw new UserError(`${file}: invalid tensor name ${JSON.stringify(t.name)}`);
    if (seen.has(t.name)) throw new UserError(`${file}: tensor ${t.name} given twice`);
    seen.add(t.name);
    if (!(DTYPES as readonly string[]).includes(t.dtype)) throw new UserError(`${file}: unknown dtype ${JSON.stringify(t.dtype)} for tensor ${t.name}`);
    if (!t.shape.every(isNonNegInt)) throw new UserError(`${file}: tensor ${t.name} has invalid shape [${t.shape}]`);
  }
  const rank = (d: Dtype) => DTYPES.indexOf(d);
  const order = tensors.map((_, i) => i);
  order.sort((i, j) => rank(tensors[j].dtype) - rank(tensors[i].dtype) || compareBytes(tensors[i].name, tensors[j].name));
  const parts: string[] = [];
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new UserError(`${file}: __metadata__.${k} must be a string`);
  }
  if (Object.keys(metadata).length > 0) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const i of order) {
    const t = tensors[i];
    const n = numel(t.shape) * ITEM_SIZE[t.dtype];
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + n}]}`);
    offset += n;
  }
  let json = `{${parts.join(',')}}`;
  const jsonLen = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonLen % 8)) % 8);
  const body = Buffer.from(json, 'utf8');
  const bytes = new Uint8Array(8 + body.length);
  Buffer.from(bytes.buffer).writeBigUInt64LE(BigInt(body.length), 0);
  bytes.set(body, 8);
  return { bytes, order, dataBytes: offset };
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(IO_CHUNK, bytes.length - done));
}

/**
 * Writes `tensors` to `filePath` (see safetensorsHeader for the layout), streaming one tensor at a
 * time into a temp file that is fsynced and renamed over `filePath` when complete.
 * `__metadata__` is `{format: 'pt', ...metadata}`.
 */
export async function writeSafetensors(filePath: string, tensors: readonly TensorToWrite[], metadata: Record<string, string> = {}): Promise<void> {
  checkLittleEndian(filePath);
  const { bytes, order } = safetensorsHeader(filePath, tensors, { format: 'pt', ...metadata });
  const tmp = tempPathFor(filePath);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w');
    writeAll(fd, bytes);
    for (const i of order) {
      const t = tensors[i];
      const data = typeof t.data === 'function' ? await t.data() : t.data;
      const want = t.dtype === 'F32' ? Float32Array : Uint16Array;
      if (!(data instanceof want)) {
        throw new UserError(`${filePath}: tensor ${t.name} is ${t.dtype} but its data is a ${data?.constructor?.name ?? typeof data} (expected ${want.name})`);
      }
      if (data.length !== numel(t.shape)) {
        throw new UserError(`${filePath}: tensor ${t.name} has shape [${t.shape}] (${numel(t.shape)} elements) but ${data.length} values`);
      }
      writeAll(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, filePath);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** transformers' default `max_shard_size` ("5GB" = 5e9 bytes). */
export const DEFAULT_MAX_SHARD_BYTES = 5e9;

/**
 * Writes a checkpoint's tensors into `dir` the way transformers' `save_pretrained` does: one
 * `model.safetensors` if everything fits in `maxShardBytes`, else `model-0000i-of-0000M.safetensors`
 * shards (tensors assigned in the given order, a new shard started when the next tensor would
 * overflow the current one) plus `model.safetensors.index.json` = `{metadata: {total_size},
 * weight_map}` (keys sorted, 2-space indent). Stale model.safetensors / shards / index files from an
 * earlier save in `dir` are removed after the new ones are in place. Returns the file names written.
 */
export async function writeSafetensorsSharded(dir: string, tensors: readonly TensorToWrite[],
  opts: { maxShardBytes?: number; metadata?: Record<string, string> } = {}): Promise<string[]> {
  const maxShard = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  const bytesOf = (t: TensorToWrite) => numel(t.shape) * ITEM_SIZE[t.dtype];
  const groups: TensorToWrite[][] = [];
  let cur: TensorToWrite[] = [];
  let curBytes = 0;
  for (const t of tensors) {
    const b = bytesOf(t);
    if (cur.length > 0 && curBytes + b > maxShard) {
      groups.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(t);
    curBytes += b;
  }
  if (cur.length > 0 || groups.length === 0) groups.push(cur);

  const written: string[] = [];
  if (groups.length === 1) {
    await writeSafetensors(path.join(dir, SINGLE_FILE), groups[0], opts.metadata);
    written.push(SINGLE_FILE);
  } else {
    const weightMap: Record<string, string> = {};
    for (let g = 0; g < groups.length; g++) {
      const name = shardFileName(g, groups.length);
      await writeSafetensors(path.join(dir, name), groups[g], opts.metadata);
      written.push(name);
      for (const t of groups[g]) weightMap[t.name] = name;
    }
    const sortedMap = Object.fromEntries(Object.keys(weightMap).sort(compareBytes).map((k) => [k, weightMap[k]]));
    const totalSize = tensors.reduce((a, t) => a + bytesOf(t), 0);
    writeFileAtomic(path.join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: sortedMap }, null, 2) + '\n');
    written.push(INDEX_FILE);
  }
  const stale = /^(model\.safetensors|model-\d{5}-of-\d{5}\.safetensors|model\.safetensors\.index\.json)$/;
  for (const f of readdirSync(dir)) {
    if (stale.test(f) && !written.includes(f)) rmSync(path.join(dir, f), { force: true });
  }
  return written;
}
