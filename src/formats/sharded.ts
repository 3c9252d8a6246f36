/**
 * A checkpoint's tensors spread over shard files (safetensors or PyTorch .bin, with an index
 * naming each tensor's file, or one file): the lookups both formats share, by tensor name.
 */
import { UserError } from '../errors.ts';

/** What a shard file of either format offers. */
export interface ShardFile<Info> {
  readonly path: string;
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
