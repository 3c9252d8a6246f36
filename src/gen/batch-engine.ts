/**
 * The GPU side of continuous batching (the SlotEngine of src/gen/engine.ts): `slots` sequences,
 * each with its own KV cache of `contextLength` rows, advanced together one step at a time.
 *
 * A step is one command encoder, one submit and one readback:
 *   rows = [the prefill chunk's C tokens (slot s, positions pos0 ..), then the S decode rows]
 *   RowsForward over all C + S rows (src/model/rows-forward.ts: each row at its own (slot, pos))
 *   logits = xn·lm_headᵀ for the wanted rows, which are contiguous by that order: the chunk's last
 *            row (when it ends the prompt) and the decode rows
 *   per wanted row: repetition penalty (its seen ids), softmax with its 1/temperature
 *   copy probs (and, when a row wants them, the penalised logits) to one staging buffer; read back.
 *
 * Memory (allocated once in `create`): a ForwardState (src/model/llama.ts) with slots KV caches and
 * slots + prefillChunk activation rows; ids, places (slot, pos) and new K/V for as many rows;
 * logits and a readout buffer (probs rows then logits rows) of slots + 1 rows; the seen ids of
 * slots + 1 rows (contextLength each); one staging buffer.
 *
 * Determinism: every kernel computes a row from that row's inputs alone, in an order independent
 * of the other rows (see rows-forward.ts; the matmul's one-row configuration gives the same bits as
 * its general one, which test/batch-engine.test.ts checks), and each wanted row has its own
 * penalty and softmax dispatch: a sequence's probabilities are the same bits alone or among
 * others, in any slot, whatever the chunking of its prompt.
 */
import { createStorage, StagingReader, upload, type GpuBuffer } from '../gpu/buffers.ts';
import { Recorder } from '../gpu/kernels.ts';
import { ForwardState, forwardStateLayout, rowsPerPass, type ForwardRole, type LlamaModel } from '../model/llama.ts';
import type { LlamaDims } from '../model/config.ts';
import type { LoraConfig } from '../model/lora.ts';
import { RowsForward, type RowsBuffers } from '../model/rows-forward.ts';
import { LinearOp } from '../ops/matmul.ts';
import { RepetitionPenaltyOp } from '../ops/repetition_penalty.ts';
import { SoftmaxOp } from '../ops/softmax.ts';
import { UserError } from '../errors.ts';
import type { EngineOutput, EngineStep, RowSampling, SlotEngine } from './engine.ts';

export interface BatchEngineOptions {
  /** Sequences that can run at once, each with its own KV cache. */
  slots: number;
  /** KV-cache rows per slot (prompt and generated tokens), at most the model's max_position_embeddings. */
  contextLength: number;
  /** Most prompt tokens one step prefills. */
  prefillChunk: number;
}

/**
 * The buffers a BatchEngine allocates besides the model: label, bytes and memory role (the
 * planner's rows: src/train/plan.ts planServing). The forward's state (forwardStateLayout, with
 * `slots` KV caches and slots + prefillChunk rows), the rows' ids, places and new K/V, and the
 * sampling buffers of the wanted rows (every decode row and a chunk's last): logits, their
 * probabilities and logits read out, the repetition penalty's ids. The staging buffer the readout
 * is copied to is mappable, not storage, and not counted (as the planner says of staging).
 */
export function batchEngineLayout(d: LlamaDims, opts: BatchEngineOptions, lora?: LoraConfig): { label: string; bytes: number; role: ForwardRole | 'sampling' }[] {
  const { slots, contextLength: Tmax, prefillChunk } = opts;
  const maxRows = slots + prefillChunk;
  const sampleRows = slots + 1;
  const W = d.nKV * d.hd;
  return [
    ...forwardStateLayout(d, slots, maxRows, Tmax, lora),
    { label: 'rows.ids', bytes: maxRows * 4, role: 'activations' },
    { label: 'rows.places', bytes: maxRows * 8, role: 'activations' },
    { label: 'rows.k_new', bytes: maxRows * W * 4, role: 'activations' },
    { label: 'rows.v_new', bytes: maxRows * W * 4, role: 'activations' },
    { label: 'batch.logits', bytes: sampleRows * d.V * 4, role: 'sampling' },
    // Probs rows 0 .. n-1, then (when a row wants them) a copy of the n logits rows.
    { label: 'batch.readout', bytes: 2 * sampleRows * d.V * 4, role: 'sampling' },
    { label: 'batch.seen_ids', bytes: sampleRows * Tmax * 4, role: 'sampling' },
  ];
}

/** A wanted row of a step: its slot, and how to sample it. */
interface SampledRow {
  slot: number;
  sampling: RowSampling;
}

export class BatchEngine implements SlotEngine {
  readonly vocabSize: number;
  /** Rows the forward holds: slots + prefillChunk. */
  readonly maxRows: number;

  private constructor(
    readonly model: LlamaModel,
    readonly slots: number,
    readonly contextLength: number,
    readonly prefillChunk: number,
    private readonly forward: RowsForward,
    private readonly rows: RowsBuffers,
    private readonly lmHead: LinearOp,
    private readonly penalty: RepetitionPenaltyOp,
    private readonly softmax: SoftmaxOp,
    private readonly logits: GpuBuffer,
    private readonly readout: GpuBuffer,
    private readonly seenIds: GpuBuffer,
    private readonly reader: StagingReader,
  ) {
    this.vocabSize = model.dims.V;
    this.maxRows = forward.state.maxRows;
  }

  static async create(model: LlamaModel, opts: BatchEngineOptions): Promise<BatchEngine> {
    const { slots, contextLength: Tmax, prefillChunk } = opts;
    for (const [name, v] of Object.entries(opts)) {
      if (!(Number.isInteger(v) && v >= 1)) throw new UserError(`batch engine: ${name} must be a positive integer, got ${v}`);
    }
    const gpu = model.gpu;
    const d = model.dims;
    const V = d.V;
    const maxBinding = gpu.maxBindingBytes;
    if (Tmax > model.maxPositions) {
      throw new UserError(`context of ${Tmax} tokens exceeds the model's max_position_embeddings ${model.maxPositions}`);
    }
    const slotBytes = Tmax * d.nKV * d.hd * 4;
    if (slots * slotBytes > maxBinding) {
      const fit = Math.floor(maxBinding / slotBytes);
      throw new UserError(
        `a KV cache of ${slots} slots × ${Tmax} tokens needs ${slots * slotBytes} bytes a layer, but this device binds at most ${maxBinding} bytes (maxStorageBufferBindingSize): ` +
          (fit >= 1 ? `at most ${fit} slots fit at this context` : `not even one slot fits: use a shorter context`),
      );
    }
    const maxRows = slots + prefillChunk;
    const perPass = rowsPerPass(d, maxBinding);
    if (maxRows > perPass) {
      throw new UserError(
        `${slots} slots + a prefill chunk of ${prefillChunk} tokens are ${maxRows} rows a step, but one activation buffer of this model holds at most ${perPass} rows on this device ` +
          `(maxStorageBufferBindingSize ${maxBinding} bytes): use fewer slots or a smaller prefill chunk`,
      );
    }
    // Wanted rows: every decode row and the chunk's last one; the readout holds their probs and logits.
    const sampleRows = slots + 1;
    if (2 * sampleRows * V * 4 > maxBinding) {
      throw new UserError(
        `the probabilities and logits of ${sampleRows} rows × ${V} tokens need ${2 * sampleRows * V * 4} bytes, but this device binds at most ${maxBinding} bytes: ` +
          `use at most ${Math.floor(maxBinding / (2 * V * 4)) - 1} slots`,
      );
    }
    const adapter = model.adapter ?? undefined;
    const state = new ForwardState(gpu, d, slots, maxRows, Tmax, adapter?.config);
    // The buffers beyond the forward's state, sized by the layout the planner reads.
    const sizes = new Map(batchEngineLayout(d, opts, adapter?.config).map((e) => [e.label, e.bytes]));
    const buffer = (label: string) => createStorage(gpu, label, sizes.get(label)!);
    const rows: RowsBuffers = { ids: buffer('rows.ids'), places: buffer('rows.places'), kNew: buffer('rows.k_new'), vNew: buffer('rows.v_new') };
    const forward = await RowsForward.create(model, state, rows);
    const logits = buffer('batch.logits');
    const readout = buffer('batch.readout');
    const seenIds = buffer('batch.seen_ids');
    const lmHead = await LinearOp.create(gpu, model.lmHead(), state.xn, logits, false);
    const penalty = await RepetitionPenaltyOp.create(gpu, V, seenIds, logits);
    const softmax = await SoftmaxOp.create(gpu, V, logits, readout);
    const reader = new StagingReader(gpu, 2 * sampleRows * V * 4, 'batch.staging');
    return new BatchEngine(model, slots, Tmax, prefillChunk, forward, rows, lmHead, penalty, softmax, logits, readout, seenIds, reader);
  }

  /** Throws on a step the engine cannot run (a caller's bug, not the user's). */
  private check(work: EngineStep): void {
    const V = this.vocabSize;
    const slotsSeen = new Set<number>();
    const slotOk = (s: number) => Number.isInteger(s) && s >= 0 && s < this.slots;
    const idOk = (id: number) => Number.isInteger(id) && id >= 0 && id < V;
    for (const r of work.decode) {
      if (!slotOk(r.slot)) throw new Error(`batch engine: decode slot ${r.slot} is not in [0, ${this.slots})`);
      if (slotsSeen.has(r.slot)) throw new Error(`batch engine: slot ${r.slot} decodes twice in one step`);
      slotsSeen.add(r.slot);
      if (!(Number.isInteger(r.pos) && r.pos >= 0 && r.pos < this.contextLength)) throw new Error(`batch engine: slot ${r.slot}: position ${r.pos} is outside its ${this.contextLength}-token context`);
      if (!idOk(r.id)) throw new Error(`batch engine: slot ${r.slot}: token ${r.id} is not in the vocabulary (${V})`);
      this.checkSampling(r.sampling, r.slot);
    }
    const p = work.prefill;
    if (p) {
      if (!slotOk(p.slot)) throw new Error(`batch engine: prefill slot ${p.slot} is not in [0, ${this.slots})`);
      if (slotsSeen.has(p.slot)) throw new Error(`batch engine: slot ${p.slot} both decodes and prefills in one step`);
      if (p.ids.length < 1 || p.ids.length > this.prefillChunk) throw new Error(`batch engine: a prefill chunk of ${p.ids.length} tokens (1 .. ${this.prefillChunk} allowed)`);
      if (!(Number.isInteger(p.pos0) && p.pos0 >= 0 && p.pos0 + p.ids.length <= this.contextLength)) {
        throw new Error(`batch engine: slot ${p.slot}: prefill of positions ${p.pos0} .. ${p.pos0 + p.ids.length - 1} is outside its ${this.contextLength}-token context`);
      }
      for (const id of p.ids) if (!idOk(id)) throw new Error(`batch engine: slot ${p.slot}: token ${id} is not in the vocabulary (${V})`);
      if (p.sampling) this.checkSampling(p.sampling, p.slot);
    }
  }

  private checkSampling(s: RowSampling, slot: number): void {
    if (!(s.invTemperature > 0 && Number.isFinite(s.invTemperature))) throw new Error(`batch engine: slot ${slot}: 1/temperature ${s.invTemperature} must be a positive finite number`);
    if (!(s.penalty > 0)) throw new Error(`batch engine: slot ${slot}: repetition penalty must be > 0, got ${s.penalty}`);
    if (s.penalty !== 1 && s.seen && s.seen.length > this.contextLength) {
      throw new Error(`batch engine: slot ${slot}: ${s.seen.length} seen ids, more than the ${this.contextLength}-token context holds`);
    }
  }

  async step(work: EngineStep): Promise<EngineOutput[]> {
    this.check(work);
    const gpu = this.model.gpu;
    const V = this.vocabSize;
    const chunk = work.prefill;
    const C = chunk ? chunk.ids.length : 0;
    const S = work.decode.length;
    const R = C + S;
    if (R === 0) return [];

    // Rows: the chunk's tokens, then the decode rows.
    const ids = new Uint32Array(R);
    const places = new Uint32Array(2 * R);
    for (let t = 0; t < C; t++) {
      ids[t] = chunk!.ids[t];
      places[2 * t] = chunk!.slot;
      places[2 * t + 1] = chunk!.pos0 + t;
    }
    work.decode.forEach((r, j) => {
      ids[C + j] = r.id;
      places[2 * (C + j)] = r.slot;
      places[2 * (C + j) + 1] = r.pos;
    });
    upload(gpu, this.rows.ids, ids);
    upload(gpu, this.rows.places, places);

    const rec = new Recorder(gpu, 'batch.step');
    this.forward.record(rec, R);

    // Wanted rows, in logits row order: the chunk's last row (forward row C - 1) when it ends the
    // prompt, then the decode rows (forward rows C ..): contiguous from forward row `first`.
    const wanted: SampledRow[] = [];
    if (chunk?.sampling) wanted.push({ slot: chunk.slot, sampling: chunk.sampling });
    for (const r of work.decode) wanted.push({ slot: r.slot, sampling: r.sampling });
    const n = wanted.length;
    if (n === 0) {
      rec.submit();
      await gpu.settle(gpu.device.queue.onSubmittedWorkDone());
      return [];
    }
    const first = R - n;
    this.lmHead.record(rec, { rows: n, inRow: first, outRow: 0 });
    const Tmax = this.contextLength;
    wanted.forEach((w, i) => {
      const s = w.sampling;
      if (s.penalty !== 1 && s.seen && s.seen.length > 0) {
        upload(gpu, this.seenIds, s.seen, i * Tmax * 4);
        this.penalty.record(rec, { rows: s.seen.length, inRow: i * Tmax, outRow: i, scale: s.penalty });
      }
    });
    // One softmax dispatch per run of consecutive rows with the same temperature (the kernel
    // normalises each row in its own workgroup, so a row's bits do not depend on the run).
    for (let i = 0; i < n; ) {
      let j = i + 1;
      while (j < n && wanted[j].sampling.invTemperature === wanted[i].sampling.invTemperature) j++;
      this.softmax.record(rec, { rows: j - i, inRow: i, outRow: i, scale: wanted[i].sampling.invTemperature });
      i = j;
    }
    const withLogits = wanted.some((w) => w.sampling.wantLogits);
    const rowBytes = V * 4;
    if (withLogits) rec.copy(this.logits, 0, this.readout, n * rowBytes, n * rowBytes);
    this.reader.copyFrom(rec, this.readout, 0, (withLogits ? 2 : 1) * n * rowBytes);
    rec.submit();
    const data = await this.reader.read();

    const outputs: EngineOutput[] = wanted.map((w, i) => {
      const out: EngineOutput = { slot: w.slot, probs: new Float32Array(data, i * rowBytes, V) };
      if (w.sampling.wantLogits) out.logits = new Float32Array(data, (n + i) * rowBytes, V);
      return out;
    });
    // The documented order: decode rows as given, then the prefill's.
    return chunk?.sampling ? [...outputs.slice(1), outputs[0]] : outputs;
  }

  destroy(): void {
    this.forward.state.destroy();
    for (const b of [this.rows.ids, this.rows.places, this.rows.kNew, this.rows.vNew, this.logits, this.readout, this.seenIds]) b.destroy();
    this.reader.destroy();
  }
}
