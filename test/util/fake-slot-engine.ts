/**
 * A SlotEngine (src/gen/engine.ts) on the CPU for the batching tests: each slot keeps the ids fed to
 * it by position (as a KV cache would), and a row's logits are a fixed function of that whole
 * history (`logitsOf`), so a sequence's distributions depend on nothing but its own tokens, in
 * whatever slot and among whatever other rows it runs. The penalty and temperature are applied as
 * RowSampling says (HF's penalty, then softmax of logits·invTemperature). Every step is recorded,
 * and a step waits for a macrotask (as a GPU readback does), so timers and I/O run between steps.
 * Feeding a slot out of order (a position other than the next one, or 0 for a new owner) throws.
 */
import type { EngineOutput, EngineStep, RowSampling, SlotEngine } from '../../src/gen/engine.ts';

/** The logits after `history` (the ids at positions 0..n-1): a hash of the history spread over the vocabulary. */
export function logitsOf(history: readonly number[], vocabSize: number): Float32Array {
  let h = 17;
  for (const id of history) h = (Math.imul(h, 31) + id + 7) >>> 0;
  const out = new Float32Array(vocabSize);
  for (let v = 0; v < vocabSize; v++) {
    const x = (Math.imul(h ^ Math.imul(v, 2654435761), 1597334677) >>> 0) / 2 ** 32; // in [0, 1)
    out[v] = 8 * x * x - 3; // a few tokens stand out
  }
  return out;
}

/** HF's repetition penalty on `seen`, as plain loops. */
export function penalised(logits: Float32Array, sampling: RowSampling): Float32Array {
  const out = Float32Array.from(logits);
  if (sampling.penalty !== 1) for (const id of sampling.seen ?? []) out[id] = out[id] < 0 ? out[id] * sampling.penalty : out[id] / sampling.penalty;
  return out;
}

export class FakeSlotEngine implements SlotEngine {
  readonly steps: EngineStep[] = [];
  private readonly history: number[][];
  destroyed = false;
  /** Makes the next step fail with this error. */
  failNext: Error | null = null;

  constructor(
    readonly slots: number,
    readonly contextLength: number,
    readonly prefillChunk: number,
    readonly vocabSize: number,
    /** Milliseconds each step waits (0: one macrotask). */
    private readonly stepMs = 0,
  ) {
    this.history = Array.from({ length: slots }, () => []);
  }

  async step(work: EngineStep): Promise<EngineOutput[]> {
    this.steps.push(structuredClone(work));
    await new Promise((resolve) => (this.stepMs > 0 ? setTimeout(resolve, this.stepMs) : setImmediate(resolve)));
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = null;
      throw e;
    }
    const slotsUsed = [...work.decode.map((d) => d.slot), ...(work.prefill ? [work.prefill.slot] : [])];
    if (new Set(slotsUsed).size !== slotsUsed.length) throw new Error(`fake engine: a slot twice in one step: ${slotsUsed}`);
    const out: EngineOutput[] = [];
    for (const d of work.decode) {
      this.feed(d.slot, [d.id], d.pos);
      out.push(this.row(d.slot, d.sampling));
    }
    if (work.prefill) {
      const p = work.prefill;
      if (p.ids.length < 1 || p.ids.length > this.prefillChunk) throw new Error(`fake engine: a prefill chunk of ${p.ids.length} tokens`);
      this.feed(p.slot, p.ids, p.pos0);
      if (p.sampling) out.push(this.row(p.slot, p.sampling));
    }
    return out;
  }

  destroy(): void {
    this.destroyed = true;
  }

  private feed(slot: number, ids: number[], pos0: number): void {
    const h = this.history[slot];
    if (pos0 === 0) h.length = 0;
    if (pos0 !== h.length) throw new Error(`fake engine: slot ${slot} fed at position ${pos0}, but it holds ${h.length} tokens`);
    if (pos0 + ids.length > this.contextLength) throw new Error(`fake engine: slot ${slot} past the context (${pos0 + ids.length} > ${this.contextLength})`);
    h.push(...ids);
  }

  private row(slot: number, sampling: RowSampling): EngineOutput {
    const logits = penalised(logitsOf(this.history[slot], this.vocabSize), sampling);
    let max = -Infinity;
    for (const l of logits) max = Math.max(max, l * sampling.invTemperature);
    const probs = new Float32Array(logits.length);
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += probs[i] = Math.exp(logits[i] * sampling.invTemperature - max);
    for (let i = 0; i < probs.length; i++) probs[i] /= sum;
    return { slot, probs, ...(sampling.wantLogits ? { logits } : {}) };
  }
}
