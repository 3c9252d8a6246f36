/**
 * GPU storage for one role of the parameter table (model weights in bf16 or f32, f32 master
 * weights, gradients, Adam m and v): one buffer per arena, chunks bound as ranges.
 */
import { createStorage, upload, readback, type GpuBuffer } from '../gpu/buffers.ts';
import type { Gpu } from '../gpu/device.ts';
import type { Binding } from '../gpu/kernels.ts';
import type { ParamChunk, ParamEntry, ParamTable } from './param-table.ts';

export type ElemType = 'f32' | 'bf16';

export class ParamBuffers {
  readonly arenas: GpuBuffer[];

  constructor(private readonly gpu: Gpu, readonly table: ParamTable, readonly elem: ElemType, readonly label: string) {
    const sizes = elem === 'f32' ? table.arenaBytesF32 : table.arenaBytesBf16;
    this.arenas = sizes.map((bytes, i) => createStorage(gpu, `${label}[${i}]`, bytes));
  }

  offsetOf(chunk: ParamChunk): number {
    return this.elem === 'f32' ? chunk.offsetF32 : chunk.offsetBf16;
  }

  /** The chunk as a bindable range (sizes rounded up to 4 bytes; the arena has the room: chunks are 256-aligned). */
  binding(chunk: ParamChunk): Binding {
    const bytes = this.elem === 'f32' ? chunk.elems * 4 : Math.ceil((chunk.elems * 2) / 4) * 4;
    return { buf: this.arenas[chunk.arena], offset: this.offsetOf(chunk), size: bytes };
  }

  /** Uploads a whole tensor: f32 values (f32 role) or bf16 bits (bf16 role). */
  uploadTensor(entry: ParamEntry, data: Float32Array | Uint16Array): void {
    const expectElems = entry.rowsTotal * entry.cols;
    if (data.length !== expectElems) throw new Error(`${entry.spec.name}: ${data.length} values, expected ${expectElems}`);
    if ((this.elem === 'f32') !== data instanceof Float32Array) throw new Error(`${entry.spec.name}: ${this.elem} buffer given ${data.constructor.name}`);
    for (const c of entry.chunks) {
      upload(this.gpu, this.arenas[c.arena], data.subarray(c.elemStart, c.elemStart + c.elems), this.offsetOf(c));
    }
  }

  /** Reads a whole tensor back (f32 values, or bf16 bits). */
  async readTensor(entry: ParamEntry): Promise<Float32Array | Uint16Array> {
    const n = entry.rowsTotal * entry.cols;
    const out = this.elem === 'f32' ? new Float32Array(n) : new Uint16Array(n);
    for (const c of entry.chunks) {
      const bytes = await readback(this.gpu, this.arenas[c.arena], this.offsetOf(c), Math.ceil((c.elems * (this.elem === 'f32' ? 4 : 2)) / 4) * 4);
      const part = this.elem === 'f32' ? new Float32Array(bytes, 0, c.elems) : new Uint16Array(bytes, 0, c.elems);
      out.set(part, c.elemStart);
    }
    return out;
  }

  /** Encodes a zero fill of every arena (e.g. gradients before accumulation). */
  clear(encoder: GPUCommandEncoder): void {
    for (const a of this.arenas) encoder.clearBuffer(a.buffer);
  }

  destroy(): void {
    for (const a of this.arenas) a.destroy();
  }
}
