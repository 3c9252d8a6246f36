/**
 * A SlotEngine (src/gen/engine.ts) of ONE slot over Generator's one-sequence forward and KV cache:
 * what `serve` batches over until the many-slot BatchEngine (src/gen/batch-engine.ts) is wired in
 * (src/cli/serve.ts `createSlotEngine`). With one slot a step holds one row: a decode token, or one
 * prefill chunk (at positions pos0.. of the cache, as Generator's forward takes any run of tokens
 * after the ones it holds). A chunk that does not end the prompt still runs the lm_head and softmax
 * of its last row (Generator's forward always does); its distribution is dropped.
 */
import type { EngineOutput, EngineStep, RowSampling, SlotEngine } from './engine.ts';
import type { Generator } from './generate.ts';

/** The sampling of a prefill chunk whose distribution nobody reads. */
const UNREAD: RowSampling = { invTemperature: 1, penalty: 1, wantLogits: false };

export class GeneratorSlotEngine implements SlotEngine {
  readonly slots = 1;
  readonly contextLength: number;
  readonly vocabSize: number;

  constructor(
    private readonly generator: Generator,
    readonly prefillChunk: number,
  ) {
    if (!(Number.isInteger(prefillChunk) && prefillChunk >= 1)) throw new Error(`GeneratorSlotEngine: prefillChunk must be an integer >= 1, got ${prefillChunk}`);
    this.contextLength = generator.contextLength;
    this.vocabSize = generator.model.dims.V;
  }

  async step(work: EngineStep): Promise<EngineOutput[]> {
    const rows = work.decode.length + (work.prefill ? 1 : 0);
    if (rows !== 1) throw new Error(`GeneratorSlotEngine: a step of its one slot has one row, got ${rows}`);
    const d = work.decode[0];
    if (d) return [{ slot: 0, ...(await this.generator.forwardRow([d.id], d.pos, d.sampling)) }];
    const p = work.prefill!;
    if (p.ids.length > this.prefillChunk) throw new Error(`GeneratorSlotEngine: a prefill chunk of ${p.ids.length} tokens, more than ${this.prefillChunk}`);
    const out = await this.generator.forwardRow(p.ids, p.pos0, p.sampling ?? UNREAD);
    return p.sampling ? [{ slot: 0, ...out }] : [];
  }

  destroy(): void {
    this.generator.destroy();
  }
}
