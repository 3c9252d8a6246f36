/**
 * A deterministic CPU stand-in for the GPU TrainStep, for the trainer's tests (no GPU).
 *
 * "Model": the HF tensors of a tiny LLaMA config; only embed_tokens takes part in the loss.
 * Target position t of a sample (t ≥ targetStart) predicts y = (ids[t] mod 7) / 7 with
 * p = E[ids[t−1] mod V, t mod H] and costs (p − y)². A micro-batch's loss is the mean over its
 * target positions; a step's loss is the mean over micro-batches (as the real engine's). Then global
 * norm clipping and AdamW (decay on every tensor except norm weights) on all tensors, every value
 * stored through Float32Array. The trajectory therefore depends on the sample order, the step
 * numbers (bias correction) and the learning rates: any order/resume bug changes the numbers.
 */
import { loadLlamaWeightsCpu } from '../src/formats/hf-checkpoint.ts';
import { llamaWeightSpecs } from '../src/model/weights.ts';
import { parseLlamaConfig, type LlamaConfig } from '../src/model/config.ts';
import { MASTER_PREFIX, type MicroBatch, type StepResult, type TensorMapF32, type TokenizedSample, type TrainEngine } from '../src/train/engine.ts';
import { dataFingerprint } from '../src/train/data.ts';
import { randomNormal, Rng } from '../src/util/random.ts';

export const TINY_CFG: LlamaConfig = parseLlamaConfig({
  model_type: 'llama', hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2,
  num_key_value_heads: 2, vocab_size: 64, max_position_embeddings: 64, rms_norm_eps: 1e-5,
}, 'fake config');

export interface FakeOptions {
  weightDecay?: number; maxGradNorm?: number; beta1?: number; beta2?: number; eps?: number;
  /** exportOptimizerState includes the weights as `master.*` (as the real TrainStep does). */
  withMasters?: boolean;
}

export interface FakeCall { step: number; lr: number; microBatches: number[][] /* sample "names" = ids[1] */ }

export class FakeEngine implements TrainEngine {
  readonly cfg: LlamaConfig;
  readonly calls: FakeCall[] = [];
  /** Called after each trainStep (tests use it to request a stop at a given step, or to delay). */
  onStep?: (step: number) => void | Promise<void>;
  private w: TensorMapF32;
  private m: TensorMapF32 = new Map();
  private v: TensorMapF32 = new Map();
  private readonly o: Required<FakeOptions>;

  private constructor(cfg: LlamaConfig, w: TensorMapF32, o: FakeOptions) {
    this.cfg = cfg;
    this.w = w;
    this.o = { weightDecay: 0.1, maxGradNorm: 1.0, beta1: 0.9, beta2: 0.999, eps: 1e-8, withMasters: false, ...o };
    for (const [k, t] of w) {
      this.m.set(k, { shape: [...t.shape], data: new Float32Array(t.data.length) });
      this.v.set(k, { shape: [...t.shape], data: new Float32Array(t.data.length) });
    }
  }

  /** Fresh random weights. */
  static fromSeed(seed: number, o: FakeOptions = {}, cfg: LlamaConfig = TINY_CFG): FakeEngine {
    const w: TensorMapF32 = new Map();
    llamaWeightSpecs(cfg).forEach((s, i) => {
      w.set(s.name, { shape: s.shape, data: randomNormal(s.shape.reduce((a, b) => a * b, 1), seed * 1000 + i, 0.3) });
    });
    return new FakeEngine(cfg, w, o);
  }

  /** Weights from a HF directory (as `TrainStep.create` loads them: bf16 files widen exactly). */
  static fromDir(dir: string, o: FakeOptions = {}, cfg: LlamaConfig = TINY_CFG): FakeEngine {
    return new FakeEngine(cfg, loadLlamaWeightsCpu(dir, cfg, { dtype: 'f32' }), o);
  }

  private target(s: TokenizedSample, t: number): { idx: number; y: number } {
    const H = this.cfg.hidden_size, V = this.cfg.vocab_size;
    return { idx: (s.ids[t - 1] % V) * H + (t % H), y: (s.ids[t] % 7) / 7 };
  }

  async trainStep(microBatches: MicroBatch[], step: number, lr: number): Promise<StepResult> {
    this.calls.push({ step, lr, microBatches: microBatches.map((mb) => mb.samples.map((s) => s.ids[1])) });
    const E = this.w.get('model.embed_tokens.weight')!.data;
    const g = new Float64Array(E.length);
    let lossSum = 0, tokens = 0;
    for (const mb of microBatches) {
      let count = 0;
      for (const s of mb.samples) count += s.ids.length - s.targetStart;
      let l = 0;
      for (const s of mb.samples) {
        for (let t = s.targetStart; t < s.ids.length; t++) {
          const { idx, y } = this.target(s, t);
          const d = E[idx] - y;
          l += d * d;
          g[idx] += (2 * d) / count / microBatches.length;
        }
      }
      lossSum += l / count;
      tokens += count;
    }
    let sq = 0;
    for (const x of g) sq += x * x;
    const gradNorm = Math.sqrt(sq);
    const clip = Math.min(1, this.o.maxGradNorm / (gradNorm + 1e-6));
    const { beta1: b1, beta2: b2, eps } = this.o;
    const bc1 = 1 - b1 ** step, bc2 = 1 - b2 ** step;
    for (const [name, p] of this.w) {
      const m = this.m.get(name)!.data, v = this.v.get(name)!.data;
      const wd = name.endsWith('norm.weight') ? 0 : this.o.weightDecay;
      const grad = name === 'model.embed_tokens.weight' ? g : null;
      for (let i = 0; i < p.data.length; i++) {
        const gi = grad ? grad[i] * clip : 0;
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        p.data[i] = p.data[i] - lr * ((m[i] / bc1) / (Math.sqrt(v[i] / bc2) + eps) + wd * p.data[i]);
      }
    }
    await this.onStep?.(step);
    return { loss: lossSum / microBatches.length, gradNorm, tokens };
  }

  async evalLoss(samples: TokenizedSample[]): Promise<{ loss: number; tokens: number }> {
    const E = this.w.get('model.embed_tokens.weight')!.data;
    let l = 0, tokens = 0;
    for (const s of samples) {
      for (let t = s.targetStart; t < s.ids.length; t++) {
        const { idx, y } = this.target(s, t);
        l += (E[idx] - y) ** 2;
        tokens++;
      }
    }
    return { loss: l / tokens, tokens };
  }

  async exportWeights(): Promise<TensorMapF32> {
    return copy(this.w);
  }

  async exportOptimizerState(): Promise<TensorMapF32> {
    const out: TensorMapF32 = new Map();
    for (const [k, t] of this.m) out.set(`exp_avg.${k}`, { shape: [...t.shape], data: t.data.slice() });
    for (const [k, t] of this.v) out.set(`exp_avg_sq.${k}`, { shape: [...t.shape], data: t.data.slice() });
    if (this.o.withMasters) for (const [k, t] of this.w) out.set(MASTER_PREFIX + k, { shape: [...t.shape], data: t.data.slice() });
    return out;
  }

  async importOptimizerState(state: TensorMapF32): Promise<void> {
    for (const [k, t] of state) {
      const [kind, ...rest] = k.split('.');
      const name = rest.join('.');
      const dst = k.startsWith(MASTER_PREFIX) ? this.w.get(k.slice(MASTER_PREFIX.length))
        : kind === 'exp_avg' ? this.m.get(name) : kind === 'exp_avg_sq' ? this.v.get(name) : undefined;
      if (!dst) throw new Error(`fake engine: unknown optimizer tensor ${k}`);
      if (dst.data.length !== t.data.length) throw new Error(`fake engine: ${k} has ${t.data.length} values, expected ${dst.data.length}`);
      dst.data.set(t.data);
    }
  }

  peakBytes(): number {
    return 12345678;
  }
}

function copy(m: TensorMapF32): TensorMapF32 {
  const out: TensorMapF32 = new Map();
  for (const [k, t] of m) out.set(k, { shape: [...t.shape], data: t.data.slice() });
  return out;
}

/**
 * `n` synthetic tokenized samples (6–20 ids, targets from position 2–4) split into train/eval;
 * ids[1] = 1000 + i names sample i in FakeEngine.calls.
 */
export function synthData(n: number, nEval: number, seed = 5): { train: TokenizedSample[]; eval: TokenizedSample[]; fingerprint: string } {
  const rng = new Rng(seed);
  const all: TokenizedSample[] = [];
  for (let i = 0; i < n; i++) {
    const len = 6 + rng.int(15);
    const ids = [1, 1000 + i];
    while (ids.length < len) ids.push(3 + rng.int(60));
    all.push({ ids, targetStart: 2 + rng.int(3), truncated: false });
  }
  const train = all.slice(0, n - nEval), evalSet = all.slice(n - nEval);
  return { train, eval: evalSet, fingerprint: dataFingerprint([...train, ...evalSet]) };
}
