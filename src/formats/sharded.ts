/**
 * A checkpoint's tensors spread over shard files (safetensors or PyTorch .bin, with an index
 * naming each tensor's file, or one file): the lookups both formats share, by tensor name.
 */
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';

/** The one message for a file or directory that cannot be opened: `<file>: cannot open (<errno code>)`. */
export function cannotOpen(file: string, e: unknown): UserError {
  const err = e as NodeJS.ErrnoException;
  return new UserError(`${file}: cannot open (${err.code ?? String(err.message ?? e)})`);
}

/** Opens `file` for reading and hands its descriptor to `build`; the descriptor is closed when `build` throws. */
export function withReadFd<T>(file: string, build: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw cannotOpen(file, e);
  }
  try {
    return build(fd);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** What a shard file of either format offers. */
export interface ShardFile<Info> {
  readonly path: string;
  names(): string[];
  info(name: string): Info;
  readTensor(name: string): unknown;
  readF32(name: string): Float32Array<ArrayBuffer>;
  readBf16(name: string): Uint16Array<ArrayBuffer>;
  close(): void;
}

export class ShardedTensors<F extends ShardFile<Info>, Info> {
  /**
   * `source`: the file errors about the whole model name (the index, or the single file);
   * `where`: each tensor's shard.
   */
  protected constructor(readonly source: string, readonly files: readonly F[], private readonly where: Map<string, F>) {}

  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  /** The file holding `name`; UserError `<source>: missing tensor <name>` if none. */
  fileOf(name: string): F {
    const f = this.where.get(name);
    if (!f) throw new UserError(`${this.source}: missing tensor ${name}`);
    return f;
  }

  info(name: string): Info {
    return this.fileOf(name).info(name);
  }

  readTensor(name: string): ReturnType<F['readTensor']> {
    return this.fileOf(name).readTensor(name) as ReturnType<F['readTensor']>;
  }

  readF32(name: string): Float32Array<ArrayBuffer> {
    return this.fileOf(name).readF32(name);
  }

  readBf16(name: string): Uint16Array<ArrayBuffer> {
    return this.fileOf(name).readBf16(name);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

/** How a format lays out a checkpoint directory, and how it opens one file. */
export interface ShardFormat<F> {
  /** The index file name (`model.safetensors.index.json`, `pytorch_model.bin.index.json`). */
  index: string;
  /** The one-file name (`model.safetensors`, `pytorch_model.bin`). */
  single: string;
  /** What the directory is, for the error of one holding neither ("a HF safetensors checkpoint directory"). */
  directory: string;
  /** What the index is, for the error of one without a weight_map ("a safetensors index"). */
  indexKind: string;
  openFile(file: string): F;
}

/** The shards of a checkpoint, each tensor's shard, and the index's `metadata` (null for one file). */
export interface OpenedShards<F> {
  source: string;
  files: F[];
  where: Map<string, F>;
  metadata: Record<string, unknown> | null;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Opens a checkpoint directory (index + shards, or the one file; the index wins when both exist,
 * as in transformers) or one file of `format`. An index is checked whole before any tensor is
 * read: every shard it names exists, no tensor is in two shards, and every tensor is where the
 * weight_map says. Every error is a UserError naming the file.
 */
export function openShards<F extends ShardFile<unknown>>(dirOrFile: string, format: ShardFormat<F>): OpenedShards<F> {
  let st;
  try {
    st = statSync(dirOrFile);
  } catch (e) {
    throw cannotOpen(dirOrFile, e);
  }
  if (st.isFile()) {
    const f = format.openFile(dirOrFile);
    return { source: dirOrFile, files: [f], where: new Map(f.names().map((n) => [n, f])), metadata: null };
  }
  const indexPath = path.join(dirOrFile, format.index);
  if (existsSync(indexPath)) return openIndex(indexPath, format);
  const single = path.join(dirOrFile, format.single);
  if (existsSync(single)) return openShards(single, format);
  throw new UserError(`${dirOrFile}: no ${format.single} or ${format.index} (not ${format.directory})`);
}

function openIndex<F extends ShardFile<unknown>>(indexPath: string, format: ShardFormat<F>): OpenedShards<F> {
  const fail = (msg: string): never => {
    throw new UserError(`${indexPath}: ${msg}`);
  };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    return fail(`invalid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json) || !isPlainObject(json.weight_map)) return fail(`no "weight_map" object (not ${format.indexKind})`);
  const weightMap = json.weight_map;
  const dir = path.dirname(indexPath);
  const shardNames: string[] = [];
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file === '' || path.basename(file) !== file) {
      fail(`weight_map.${name} is ${JSON.stringify(file)}; expected a shard file name in the same directory`);
    }
    if (!shardNames.includes(file as string)) shardNames.push(file as string);
  }
  const files: F[] = [];
  try {
    for (const s of shardNames) {
      const p = path.join(dir, s);
      if (!existsSync(p)) fail(`shard ${s} is listed in weight_map but missing`);
      files.push(format.openFile(p));
    }
    // Every tensor of every shard counts (transformers loads whole shards); the map must agree.
    const where = new Map<string, F>();
    for (const f of files) {
      for (const n of f.names()) {
        const other = where.get(n);
        if (other) throw new UserError(`${f.path}: tensor ${n} is also in ${other.path}`);
        where.set(n, f);
      }
    }
    for (const [name, file] of Object.entries(weightMap)) {
      const f = where.get(name);
      const expected = path.join(dir, file as string);
      if (!f) throw new UserError(`${expected}: missing tensor ${name} (listed in ${format.index})`);
      if (f.path !== expected) fail(`weight_map puts ${name} in ${file as string}, but it is in ${path.basename(f.path)}`);
    }
    return { source: indexPath, files, where, metadata: isPlainObject(json.metadata) ? json.metadata : null };
  } catch (e) {
    for (const f of files) f.close();
    throw e;
  }
}
