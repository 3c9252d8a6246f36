/**
 * The one offset table of the model's parameters (llm.c style): weights, f32 master weights,
 * gradients and both Adam moments are laid out by the same table, so the optimizer walks one list.
 *
 * A tensor is split into row chunks so that no chunk exceeds the device's storage binding limit
 * (lavapipe: 128 MiB; the 32000×4096 embedding of a 7B model is 500 MiB in f32). Chunks are packed
 * into "arenas" (one GPU buffer each, at most the binding limit), at 256-byte aligned offsets so
 * that every chunk can be bound as its own range (256 = the largest minStorageBufferOffsetAlignment
 * in practice). The same chunk sits in the same arena for every element size (f32 arenas for
 * master/grad/m/v, bf16 arenas for the bf16 model copy); only byte offsets differ.
 */
import type { LlamaConfig } from './config.ts';
import { hfDecays, llamaWeightSpecs } from './weights.ts';

export const BINDING_ALIGN = 256;

export interface ParamSpec {
  /** HF name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  /** [rows, cols] for matrices, [n] for norm weights. */
  shape: number[];
  /** AdamW weight decay applies: the HF Trainer's rule, `hfDecays` (src/model/weights.ts). */
  decay: boolean;
}

export interface ParamChunk {
  arena: number;
  rowStart: number;
  rows: number;
  /** Elements in this chunk (rows × cols). */
  elems: number;
  /** Byte offset in the arena, per element size. */
  offsetF32: number;
  offsetBf16: number;
  /** Element offset of the chunk within the whole tensor. */
  elemStart: number;
}

export interface ParamEntry {
  spec: ParamSpec;
  cols: number;
  rowsTotal: number;
  chunks: ParamChunk[];
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

export class ParamTable {
  readonly entries: ParamEntry[] = [];
  readonly byName = new Map<string, ParamEntry>();
  /** Byte sizes of the arenas for 4-byte and 2-byte elements. */
  readonly arenaBytesF32: number[] = [];
  readonly arenaBytesBf16: number[] = [];
  readonly totalElems: number;

  constructor(specs: ParamSpec[], maxBindingBytes: number) {
    let total = 0;
    const arenaCap = Math.floor(maxBindingBytes / BINDING_ALIGN) * BINDING_ALIGN;
    for (const spec of specs) {
      const cols = spec.shape.length === 1 ? spec.shape[0] : spec.shape[1];
      const rowsTotal = spec.shape.length === 1 ? 1 : spec.shape[0];
      // Rows per chunk: fit the binding limit in f32; keep rows×cols even so a bf16 chunk never
      // shares a u32 word with the next chunk.
      let rowsPerChunk = Math.max(1, Math.floor(arenaCap / (cols * 4)));
      if (rowsPerChunk < rowsTotal && (rowsPerChunk * cols) % 2 === 1) rowsPerChunk--;
      if (rowsPerChunk === 0) throw new Error(`${spec.name}: one row of ${cols} f32 values exceeds the binding limit ${maxBindingBytes}`);
      const entry: ParamEntry = { spec, cols, rowsTotal, chunks: [] };
      for (let r = 0; r < rowsTotal; r += rowsPerChunk) {
        const rows = Math.min(rowsPerChunk, rowsTotal - r);
        const elems = rows * cols;
        const bytesF32 = elems * 4;
        let arena = this.arenaBytesF32.length - 1;
        if (arena < 0 || alignUp(this.arenaBytesF32[arena], BINDING_ALIGN) + bytesF32 > arenaCap) {
          this.arenaBytesF32.push(0);
          this.arenaBytesBf16.push(0);
          arena++;
        }
        const offsetF32 = alignUp(this.arenaBytesF32[arena], BINDING_ALIGN);
        const offsetBf16 = alignUp(this.arenaBytesBf16[arena], BINDING_ALIGN);
        this.arenaBytesF32[arena] = offsetF32 + bytesF32;
        this.arenaBytesBf16[arena] = offsetBf16 + alignUp(elems * 2, 4);
        entry.chunks.push({ arena, rowStart: r, rows, elems, offsetF32, offsetBf16, elemStart: r * cols });
      }
      total += rowsTotal * cols;
      this.entries.push(entry);
      this.byName.set(spec.name, entry);
    }
    this.totalElems = total;
  }

  get(name: string): ParamEntry {
    const e = this.byName.get(name);
    if (!e) throw new Error(`no parameter named ${name}`);
    return e;
  }
}

/** The table of a LLaMA in HF names and order, with the HF Trainer's weight-decay rule. */
export function llamaParamTable(cfg: LlamaConfig, maxBindingBytes: number): ParamTable {
  const specs = llamaWeightSpecs(cfg).map((w) => ({ name: w.name, shape: w.shape, decay: hfDecays(w.name) }));
  return new ParamTable(specs, maxBindingBytes);
}
