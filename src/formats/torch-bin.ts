/**
 * A reader of PyTorch `pytorch_model*.bin` checkpoints (what `torch.save(state_dict)` writes and what
 * most LLaMA-1 checkpoints and the released weight diffs are), so every command that takes a model
 * directory can load them without Python.
 *
 * Format: a zip archive (STORED entries, no compression) with one top-level folder `<name>/` holding
 * `data.pkl` (a protocol-2 pickle of the state dict) and `data/<key>` (each storage's raw
 * little-endian bytes); newer torch adds `byteorder` ("little") and `.data/serialization_id`.
 * Archives past 4 GiB (a 7B shard is ~10 GB) use ZIP64 records, read here too.
 *
 * Why a restricted pickle VM: unpickling runs arbitrary callables (a GLOBAL os.system plus a REDUCE
 * is a shell command), and these files come from the internet. This VM knows only the opcodes
 * torch.save emits for a state dict, and only these globals: collections.OrderedDict (the dict and
 * the empty backward-hooks argument), torch._utils._rebuild_tensor_v2 (one tensor: storage, offset,
 * size, stride), and torch.FloatStorage / HalfStorage / BFloat16Storage (the storage types, through
 * the persistent id ('storage', type, key, location, numel)). Nothing is ever called: REDUCE on these
 * globals builds plain records. Any other global, a REDUCE of anything else, a BUILD other than the
 * `_metadata` attribute that `Module.state_dict()` carries (dropped: it is the modules' version
 * numbers), or any other opcode is one UserError naming the file.
 *
 * Tensors: the views torch.save writes for a state dict are a storage, an element offset into it and
 * a shape with contiguous strides; other strides (a transposed view) are refused, not copied.
 * Reading is lazy: opening parses only the zip directory and the pickle; a tensor's bytes are read
 * from its storage entry on demand with positional reads (the archive is never read whole).
 *
 * Every error a user can cause is a UserError whose message starts with the file path.
 */
import { closeSync, fstatSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { UserError } from '../errors.ts';
import { openShards, ShardedTensors, withReadFd, type ShardFormat } from './sharded.ts';
import { numel, tensorToBf16, tensorToF32, type Dtype, type Tensor, type TensorData } from './safetensors.ts';

export const TORCH_SINGLE_FILE = 'pytorch_model.bin';
export const TORCH_INDEX_FILE = 'pytorch_model.bin.index.json';

/** The storage types a state dict of float weights uses, as torch.save names them. */
const STORAGE_DTYPES: Record<string, Dtype> = {
  'torch.FloatStorage': 'F32',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
};
const ITEM: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };

const ORDERED_DICT = 'collections.OrderedDict';
const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const ALLOWED_GLOBALS = new Set([ORDERED_DICT, REBUILD_TENSOR, ...Object.keys(STORAGE_DTYPES)]);

/** One tensor of the state dict: where its bytes are and how they are laid out. */
export interface TorchTensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Storage key (`data/<key>` in the archive). */
  key: string;
  /** Offset of the tensor's first byte in the archive file. */
  fileOffset: number;
  nbytes: number;
}

// ------------------------------------------------------------------------------------------------
// Zip

interface ZipEntry { name: string; method: number; compressedSize: number; size: number; localHeaderOffset: number }

function u16(b: Buffer, o: number): number { return b.readUInt16LE(o); }
function u32(b: Buffer, o: number): number { return b.readUInt32LE(o); }
function u64(b: Buffer, o: number): number {
  const v = b.readBigUInt64LE(o);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER + 1 : Number(v);
}

function readAt(file: string, fd: number, len: number, position: number): Buffer {
  const buf = Buffer.alloc(len);
  let done = 0;
  while (done < len) {
    const got = readSync(fd, buf, done, Math.min(len - done, 1 << 30), position + done);
    if (got === 0) throw new UserError(`${file}: truncated (file ended at byte ${position + done}, expected ${len - done} more bytes)`);
    done += got;
  }
  return buf;
}

/** The central directory of the zip `fd` (EOCD found by scanning the last 64 KiB + 22 bytes, ZIP64 when flagged). */
function readZipDirectory(file: string, fd: number, fileSize: number): ZipEntry[] {
  const fail = (msg: string): never => {
    throw new UserError(`${file}: ${msg}`);
  };
  if (fileSize < 22) fail(`not a torch.save zip archive (${fileSize} bytes; truncated, or a legacy pre-1.6 torch.save file, not supported)`);
  const tailLen = Math.min(fileSize, 22 + 0xffff);
  const tail = readAt(file, fd, tailLen, fileSize - tailLen);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (u32(tail, i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('not a torch.save zip archive (no end-of-central-directory record: truncated, or a legacy pre-1.6 torch.save file, not supported)');
  let count = u16(tail, eocd + 10);
  let cdSize = u32(tail, eocd + 12);
  let cdOffset = u32(tail, eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // ZIP64: the locator sits just before the EOCD and points at the ZIP64 EOCD record.
    if (eocd < 20 || u32(tail, eocd - 20) !== 0x07064b50) fail('corrupt zip (ZIP64 sizes without a ZIP64 locator)');
    const recOffset = u64(tail, eocd - 20 + 8);
    if (recOffset + 56 > fileSize) fail('corrupt zip (ZIP64 end record past the end of the file)');
    const rec = readAt(file, fd, 56, recOffset);
    if (u32(rec, 0) !== 0x06064b50) fail('corrupt zip (no ZIP64 end record where the locator says)');
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }
  if (cdOffset + cdSize > fileSize) fail(`truncated (the zip directory ends at byte ${cdOffset + cdSize}, the file has ${fileSize})`);
  if (cdSize > 256 * 2 ** 20) fail(`corrupt zip (a ${cdSize}-byte central directory)`);
  const cd = readAt(file, fd, cdSize, cdOffset);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || u32(cd, p) !== 0x02014b50) fail(`corrupt zip (central directory entry ${i} is damaged)`);
    const method = u16(cd, p + 10);
    let compressedSize = u32(cd, p + 20);
    let size = u32(cd, p + 24);
    const nameLen = u16(cd, p + 28);
    const extraLen = u16(cd, p + 30);
    const commentLen = u16(cd, p + 32);
    let localHeaderOffset = u32(cd, p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) fail(`corrupt zip (central directory entry ${i} runs past the directory)`);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    // ZIP64 extended information: the 64-bit values of the fields that are 0xffffffff, in this order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = u16(cd, e);
      const len = u16(cd, e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (): number => {
          if (q + 8 > e + 4 + len) fail(`corrupt zip (short ZIP64 field in entry ${name})`);
          const v = u64(cd, q);
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
      }
      e += 4 + len;
    }
    entries.push({ name, method, compressedSize, size, localHeaderOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** File offset of an entry's data (after its local header, whose extra field torch pads for alignment). */
function entryDataOffset(file: string, fd: number, fileSize: number, e: ZipEntry): number {
  if (e.method !== 0) {
    throw new UserError(`${file}: zip entry ${e.name} is compressed (method ${e.method}); torch.save writes uncompressed (STORED) entries, and this reader reads only those`);
  }
  if (e.compressedSize !== e.size) throw new UserError(`${file}: corrupt zip (STORED entry ${e.name} has different stored and real sizes)`);
  if (e.localHeaderOffset + 30 > fileSize) throw new UserError(`${file}: truncated (entry ${e.name} starts past the end of the file)`);
  const h = readAt(file, fd, 30, e.localHeaderOffset);
  if (u32(h, 0) !== 0x04034b50) throw new UserError(`${file}: corrupt zip (no local header for entry ${e.name})`);
  const start = e.localHeaderOffset + 30 + u16(h, 26) + u16(h, 28);
  if (start + e.size > fileSize) throw new UserError(`${file}: truncated (entry ${e.name} ends at byte ${start + e.size}, the file has ${fileSize})`);
  return start;
}

// ------------------------------------------------------------------------------------------------
// The restricted pickle VM

interface PGlobal { kind: 'global'; name: string }
interface PTuple { kind: 'tuple'; items: PValue[] }
interface PDict { kind: 'dict'; map: Map<string, PValue> }
interface PStorage { kind: 'storage'; dtype: Dtype; key: string; numel: number }
interface PTensor { kind: 'tensor'; storage: PStorage; offset: number; shape: number[]; stride: number[] }
interface PMark { kind: 'mark' }
type PValue = PGlobal | PTuple | PDict | PStorage | PTensor | string | number | boolean | null;
const MARK: PMark = { kind: 'mark' };

function describe(v: PValue | PMark): string {
  if (v === null) return 'None';
  if (typeof v !== 'object') return typeof v === 'string' ? 'a string' : typeof v === 'number' ? 'an integer' : 'a bool';
  return v.kind === 'global' ? v.name : v.kind === 'dict' ? 'a dict' : `a ${v.kind}`;
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function intTuple(v: PValue, what: string, fail: (m: string) => never): number[] {
  if (typeof v !== 'object' || v === null || v.kind !== 'tuple' || !v.items.every((x) => isInt(x) && x >= 0)) {
    return fail(`${what} is ${describe(v)}, expected a tuple of non-negative integers`);
  }
  return v.items as number[];
}

/**
 * Runs the pickle `data` (torch.save's data.pkl) and returns the state dict: name -> tensor record.
 * `storageOf(key, dtype, numel)` is asked for each persistent id, so the caller can check it exists.
 */
function unpickleStateDict(file: string, data: Buffer, storageOf: (key: string, dtype: Dtype, numel: number) => PStorage): Map<string, PTensor> {
  const fail = (msg: string): never => {
    throw new UserError(`${file}: ${msg} (this reader accepts only what torch.save writes for a state dict of f32/f16/bf16 tensors and never executes pickled code)`);
  };
  const stack: (PValue | PMark)[] = [];
  const memo = new Map<number, PValue>();
  let p = 0;
  const need = (n: number) => {
    if (p + n > data.length) fail('truncated pickle');
  };
  const pop = (): PValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) return fail('corrupt pickle (stack underflow)');
    return v as PValue;
  };
  const popMark = (): PValue[] => {
    let i = stack.length - 1;
    while (i >= 0 && stack[i] !== MARK) i--;
    if (i < 0) fail('corrupt pickle (no MARK)');
    const items = stack.splice(i) as PValue[];
    items.shift();
    return items;
  };
  const top = (): PValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail('corrupt pickle (stack underflow)');
    return v as PValue;
  };
  const readLine = (): string => {
    const end = data.indexOf(0x0a, p);
    if (end < 0) fail('truncated pickle');
    const s = data.toString('latin1', p, end);
    p = end + 1;
    return s;
  };
  const setItem = (d: PValue, k: PValue, v: PValue) => {
    if (typeof d !== 'object' || d === null || d.kind !== 'dict') return fail(`SETITEM on ${describe(d)}, expected a dict`);
    if (typeof k !== 'string') return fail(`a dict key is ${describe(k)}, expected a string`);
    d.map.set(k, v);
  };

  for (;;) {
    need(1);
    const op = data[p++];
    switch (op) {
      case 0x80: // PROTO
        need(1);
        if (data[p] > 5) fail(`pickle protocol ${data[p]}`);
        p += 1;
        break;
      case 0x63: { // GLOBAL "module\nname\n"
        const mod = readLine();
        const name = readLine();
        const full = `${mod}.${name}`;
        if (!ALLOWED_GLOBALS.has(full)) {
          fail(`refusing pickle GLOBAL ${full} at byte ${p}: only ${[...ALLOWED_GLOBALS].join(', ')} are allowed`);
        }
        stack.push({ kind: 'global', name: full });
        break;
      }
      case 0x71: need(1); memo.set(data[p], top()); p += 1; break; // BINPUT
      case 0x72: need(4); memo.set(data.readUInt32LE(p), top()); p += 4; break; // LONG_BINPUT
      case 0x68: { // BINGET
        need(1);
        const k = data[p++];
        if (!memo.has(k)) fail(`corrupt pickle (BINGET ${k} of an unset memo slot)`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x6a: { // LONG_BINGET
        need(4);
        const k = data.readUInt32LE(p);
        p += 4;
        if (!memo.has(k)) fail(`corrupt pickle (LONG_BINGET ${k} of an unset memo slot)`);
        stack.push(memo.get(k)!);
        break;
      }
      case 0x28: stack.push(MARK); break; // MARK
      case 0x29: stack.push({ kind: 'tuple', items: [] }); break; // EMPTY_TUPLE
      case 0x85: stack.push({ kind: 'tuple', items: [pop()] }); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push({ kind: 'tuple', items: [a, b] }); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push({ kind: 'tuple', items: [a, b, c] }); break; } // TUPLE3
      case 0x74: stack.push({ kind: 'tuple', items: popMark() }); break; // TUPLE
      case 0x7d: stack.push({ kind: 'dict', map: new Map() }); break; // EMPTY_DICT
      case 0x73: { const v = pop(); const k = pop(); setItem(top(), k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) fail('corrupt pickle (SETITEMS with an odd number of items)');
        const d = top();
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x58: { // BINUNICODE
        need(4);
        const n = data.readUInt32LE(p);
        p += 4;
        need(n);
        stack.push(data.toString('utf8', p, p + n));
        p += n;
        break;
      }
      case 0x8c: { // SHORT_BINUNICODE
        need(1);
        const n = data[p++];
        need(n);
        stack.push(data.toString('utf8', p, p + n));
        p += n;
        break;
      }
      case 0x4b: need(1); stack.push(data[p]); p += 1; break; // BININT1
      case 0x4d: need(2); stack.push(data.readUInt16LE(p)); p += 2; break; // BININT2
      case 0x4a: need(4); stack.push(data.readInt32LE(p)); p += 4; break; // BININT
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        need(1);
        const n = data[p++];
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[p + i]);
        if (n > 0 && data[p + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) fail(`an integer ${v} too large`);
        stack.push(Number(v));
        break;
      }
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4e: stack.push(null); break; // NONE
      case 0x51: { // BINPERSID: ('storage', StorageType, key, location, numel)
        const pid = pop();
        if (typeof pid !== 'object' || pid === null || pid.kind !== 'tuple' || pid.items.length !== 5 || pid.items[0] !== 'storage') {
          fail(`a persistent id is ${describe(pid)}, expected ('storage', type, key, location, numel)`);
        }
        const [, type, key, , n] = (pid as PTuple).items;
        if (typeof type !== 'object' || type === null || type.kind !== 'global' || !(type.name in STORAGE_DTYPES)) {
          fail(`a storage's type is ${describe(type)}, expected one of ${Object.keys(STORAGE_DTYPES).join(', ')}`);
        }
        if (typeof key !== 'string' || !isInt(n) || n < 0) fail('a storage id has a bad key or size');
        stack.push(storageOf(key as string, STORAGE_DTYPES[(type as PGlobal).name], n as number));
        break;
      }
      case 0x52: { // REDUCE: only the two allowed callables, and nothing is called
        const args = pop();
        const fn = pop();
        if (typeof fn !== 'object' || fn === null || fn.kind !== 'global') fail(`refusing REDUCE of ${describe(fn)}`);
        if (typeof args !== 'object' || args === null || args.kind !== 'tuple') return fail(`REDUCE arguments are ${describe(args)}, expected a tuple`);
        const g = (fn as PGlobal).name;
        if (g === ORDERED_DICT) {
          if (args.items.length !== 0) fail(`refusing REDUCE ${ORDERED_DICT} with arguments`);
          stack.push({ kind: 'dict', map: new Map() });
        } else if (g === REBUILD_TENSOR) {
          stack.push(rebuildTensor(args.items, fail));
        } else {
          fail(`refusing REDUCE of ${g}`);
        }
        break;
      }
      case 0x62: { // BUILD: only Module.state_dict()'s `_metadata` attribute on the dict, which is dropped
        const state = pop();
        const obj = top();
        const ok = typeof obj === 'object' && obj !== null && obj.kind === 'dict' && typeof state === 'object' && state !== null &&
          state.kind === 'dict' && [...state.map.keys()].every((k) => k === '_metadata');
        if (!ok) fail(`refusing BUILD of ${describe(obj)} with ${describe(state)}`);
        break;
      }
      case 0x2e: { // STOP
        const result = pop();
        if (typeof result !== 'object' || result === null || result.kind !== 'dict') return fail(`the pickle holds ${describe(result)}, not a state dict`);
        const out = new Map<string, PTensor>();
        for (const [k, v] of result.map) {
          if (typeof v !== 'object' || v === null || v.kind !== 'tensor') return fail(`state dict entry ${k} is ${describe(v)}, not a tensor`);
          out.set(k, v);
        }
        return out;
      }
      default:
        return fail(`refusing pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${p - 1}`);
    }
  }
}

/** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) as a record. */
function rebuildTensor(a: PValue[], fail: (m: string) => never): PTensor {
  if (a.length !== 6 && a.length !== 7) fail(`${REBUILD_TENSOR} with ${a.length} arguments, expected 6 or 7`);
  const [storage, offset, size, stride, requiresGrad, hooks, meta] = a;
  if (typeof storage !== 'object' || storage === null || storage.kind !== 'storage') return fail(`${REBUILD_TENSOR} of ${describe(storage)}, expected a storage`);
  if (!isInt(offset) || offset < 0) return fail(`${REBUILD_TENSOR} with storage offset ${describe(offset)}`);
  const shape = intTuple(size, `a tensor's size`, fail);
  const strides = intTuple(stride, `a tensor's stride`, fail);
  if (typeof requiresGrad !== 'boolean') fail(`${REBUILD_TENSOR} with requires_grad ${describe(requiresGrad)}`);
  const emptyDict = (v: PValue | undefined) => typeof v === 'object' && v !== null && v.kind === 'dict' && v.map.size === 0;
  if (!emptyDict(hooks)) fail(`${REBUILD_TENSOR} with backward hooks`);
  if (a.length === 7 && meta !== null && !emptyDict(meta)) fail(`${REBUILD_TENSOR} with tensor metadata`);
  if (shape.length !== strides.length) fail(`a tensor of size [${shape}] has stride [${strides}]`);
  return { kind: 'tensor', storage, offset, shape, stride: strides };
}

// ------------------------------------------------------------------------------------------------
// Files and checkpoints

/** One open pytorch_model*.bin: zip directory and pickle parsed, tensors read on demand. Call close(). */
export class TorchBinFile {
  readonly tensors: ReadonlyMap<string, TorchTensorInfo>;
  private fd: number | null;

  private constructor(readonly path: string, fd: number, tensors: Map<string, TorchTensorInfo>) {
    this.fd = fd;
    this.tensors = tensors;
  }

  static open(filePath: string): TorchBinFile {
    if (endianness() !== 'LE') throw new UserError(`${filePath}: torch.save data is little-endian; this host is big-endian (not supported)`);
    return withReadFd(filePath, (fd) => new TorchBinFile(filePath, fd, parseArchive(filePath, fd)));
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TorchTensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new UserError(`${this.path}: missing tensor ${name}`);
    return t;
  }

  readTensor(name: string): Tensor {
    const t = this.info(name);
    if (this.fd === null) throw new Error(`${this.path}: read after close()`);
    const buf = new ArrayBuffer(t.nbytes);
    const dst = new Uint8Array(buf);
    let done = 0;
    while (done < t.nbytes) {
      const got = readSync(this.fd, dst, done, Math.min(t.nbytes - done, 1 << 30), t.fileOffset + done);
      if (got === 0) throw new UserError(`${this.path}: truncated (file ended at byte ${t.fileOffset + done}; was it modified while open?)`);
      done += got;
    }
    const n = t.nbytes / ITEM[t.dtype];
    const data: TensorData = t.dtype === 'F32' ? new Float32Array(buf, 0, n) : new Uint16Array(buf, 0, n);
    return { dtype: t.dtype, shape: [...t.shape], data };
  }

  readF32(name: string): Float32Array<ArrayBuffer> {
    return tensorToF32(this.path, name, this.readTensor(name));
  }

  readBf16(name: string): Uint16Array<ArrayBuffer> {
    return tensorToBf16(this.path, name, this.readTensor(name));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function parseArchive(file: string, fd: number): Map<string, TorchTensorInfo> {
  const fileSize = fstatSync(fd).size;
  const entries = readZipDirectory(file, fd, fileSize);
  const pkl = entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkl.length !== 1) {
    throw new UserError(`${file}: not a torch.save archive (${pkl.length === 0 ? 'no' : 'more than one'} <name>/data.pkl entry)`);
  }
  const prefix = pkl[0].name.slice(0, -'data.pkl'.length);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const byteorder = byName.get(`${prefix}byteorder`);
  if (byteorder) {
    const v = readAt(file, fd, byteorder.size, entryDataOffset(file, fd, fileSize, byteorder)).toString('latin1');
    if (v !== 'little') throw new UserError(`${file}: storages are ${JSON.stringify(v)}-endian; only little-endian is supported`);
  }
  if (pkl[0].size > 256 * 2 ** 20) throw new UserError(`${file}: a ${pkl[0].size}-byte data.pkl (a state dict's is kilobytes; not a state dict?)`);
  const pickle = readAt(file, fd, pkl[0].size, entryDataOffset(file, fd, fileSize, pkl[0]));

  const storages = new Map<string, PStorage & { fileOffset: number }>();
  const storageOf = (key: string, dtype: Dtype, n: number): PStorage => {
    const seen = storages.get(key);
    if (seen) {
      if (seen.dtype !== dtype || seen.numel !== n) throw new UserError(`${file}: storage ${key} is referenced with two different types or sizes`);
      return seen;
    }
    const e = byName.get(`${prefix}data/${key}`);
    if (!e) throw new UserError(`${file}: storage ${key} is missing (no ${prefix}data/${key} entry)`);
    const nbytes = n * ITEM[dtype];
    if (e.size !== nbytes) throw new UserError(`${file}: storage ${key} has ${e.size} bytes, its ${n} ${dtype} elements need ${nbytes}`);
    const s = { kind: 'storage' as const, dtype, key, numel: n, fileOffset: entryDataOffset(file, fd, fileSize, e) };
    storages.set(key, s);
    return s;
  };
  const dict = unpickleStateDict(file, pickle, storageOf);

  const out = new Map<string, TorchTensorInfo>();
  for (const [name, t] of dict) {
    // Contiguous (C-order) strides; a dimension of size 1 may have any stride, as in torch's is_contiguous.
    let expect = 1;
    for (let d = t.shape.length - 1; d >= 0; d--) {
      if (t.shape[d] !== 1 && t.stride[d] !== expect) {
        throw new UserError(`${file}: tensor ${name} of size [${t.shape}] has stride [${t.stride}], not contiguous (only contiguous tensors are supported)`);
      }
      expect *= t.shape[d];
    }
    const n = numel(t.shape);
    if (t.offset + n > t.storage.numel) {
      throw new UserError(`${file}: tensor ${name} (offset ${t.offset}, ${n} elements) runs past its storage ${t.storage.key} (${t.storage.numel} elements)`);
    }
    const item = ITEM[t.storage.dtype];
    const s = storages.get(t.storage.key)!;
    out.set(name, { name, dtype: t.storage.dtype, shape: t.shape, key: t.storage.key, fileOffset: s.fileOffset + t.offset * item, nbytes: n * item });
  }
  return out;
}

/**
 * A model's tensors across one `pytorch_model.bin` or the shards listed in
 * `pytorch_model.bin.index.json` (the index wins when both exist, as in transformers).
 */
export class TorchBinModel extends ShardedTensors<TorchBinFile, TorchTensorInfo> {
  private constructor(source: string, files: TorchBinFile[], where: Map<string, TorchBinFile>) {
    super(source, files, where);
  }

  /** Opens a checkpoint directory (index + shards, or pytorch_model.bin), or one .bin file. */
  static open(dirOrFile: string): TorchBinModel {
    const s = openShards(dirOrFile, TORCH_BIN_FORMAT);
    return new TorchBinModel(s.source, s.files, s.where);
  }
}

const TORCH_BIN_FORMAT: ShardFormat<TorchBinFile> = {
  index: TORCH_INDEX_FILE,
  single: TORCH_SINGLE_FILE,
  directory: 'a PyTorch checkpoint directory',
  indexKind: 'a PyTorch checkpoint index',
  openFile: (file) => TorchBinFile.open(file),
};
