/**
 * Weight diffs, as the Character-LLM (and Vicuna) weights are released: LLaMA's license forbids
 * sharing the fine-tuned weights, so the authors publish delta = target − base and users add the
 * base they obtained themselves. This is FastChat's apply_delta / make_delta without Python.
 *
 * Arithmetic (FastChat's): both tensors are converted to f16 (round to nearest even; F16 sources as
 * they are), then target = f16(base + delta) or, reversed, delta = f16(target − base), each sum
 * rounded once to f16. The f32 sum of two f16 values rounded to f16 equals the exactly rounded
 * result (f32 has more than 2·11+2 significand bits), which is also what PyTorch's CPU half add does,
 * so the output is bit-identical to FastChat's. Unlike FastChat, a value that is not finite in f16
 * (an input past ±65504, a NaN, or a sum that overflows) is an error naming the tensor, not an
 * inf written silently into the weights.
 *
 * Streaming: tensors are read, combined and written one at a time (the output writer asks for each
 * tensor's data when its turn comes), so host memory holds about one tensor pair, not a model.
 * Output: HF safetensors (F16) shards + index, config.json of the delta side with torch_dtype float16,
 * and the delta side's tokenizer files, built in a temp directory renamed to `out` when complete.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { tempPathFor, writeFileAtomic } from '../util/atomic.ts';
import { bf16ArrayToF32, f16ArrayToF32, f16BitsToF32, f32ArrayToF16 } from '../util/bf16.ts';
import { noteOnStderr, type Note } from '../notes.ts';
import { LM_HEAD, llamaWeightSpecs } from '../model/weights.ts';
import { loadLlamaConfig, openLlamaWeights } from './hf-checkpoint.ts';
import { DEFAULT_MAX_SHARD_BYTES, numel, writeSafetensorsSharded, type TensorToWrite } from './safetensors.ts';
import { openWeights, type WeightsSource } from './weights-source.ts';

/** The tokenizer files a HF LLaMA directory may hold; those present on the delta side are copied. */
export const TOKENIZER_FILES = ['tokenizer.model', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json'];

/** Buffers some exporters save that are not weights (recomputed from rope_theta): not combined, not written. */
const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

export interface ApplyDeltaOptions {
  base: string;
  /** The delta directory; with `reverse`, the target (fine-tuned) model. */
  delta: string;
  out: string;
  /** Write delta = target − base instead of target = base + delta. */
  reverse?: boolean;
  maxShardBytes?: number;
  onNote?: Note;
  /** Called after each tensor is written (progress). */
  onTensor?: (name: string, index: number, count: number) => void;
}

/** f16 bits of tensor `name`: F16 as stored, F32 and BF16 rounded to nearest even (as `.half()` does). */
function readF16Bits(src: WeightsSource, name: string): Uint16Array<ArrayBuffer> {
  const t = src.readTensor(name);
  let bits: Uint16Array<ArrayBuffer>;
  switch (t.dtype) {
    case 'F16': bits = t.data as Uint16Array<ArrayBuffer>; break;
    case 'F32': bits = f32ArrayToF16(t.data as Float32Array); break;
    case 'BF16': bits = f32ArrayToF16(bf16ArrayToF32(t.data as Uint16Array)); break;
    default: throw new UserError(`${src.fileOf(name).path}: tensor ${name} is ${t.dtype}, expected F32, F16 or BF16`);
  }
  const bad = firstNonFinite(bits);
  if (bad >= 0) {
    throw new UserError(`${src.fileOf(name).path}: tensor ${name} element ${bad} is not finite in f16 ` +
      `(${t.dtype === 'F16' ? 'stored so' : 'outside f16\'s ±65504'}); the f16 arithmetic of a weight diff cannot represent it`);
  }
  return bits;
}

/** Index of the first Inf/NaN f16 value, or -1. */
function firstNonFinite(bits: Uint16Array): number {
  for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7c00) === 0x7c00) return i;
  return -1;
}

const CHUNK = 1 << 20;

/** f16(a ± b) elementwise, through an f32 scratch chunk (exact: see the header). */
export function combineF16(a: Uint16Array, b: Uint16Array, sign: 1 | -1): Uint16Array<ArrayBuffer> {
  const out = new Uint16Array(a.length);
  const fa = new Float32Array(Math.min(CHUNK, a.length));
  const fb = new Float32Array(fa.length);
  for (let s = 0; s < a.length; s += CHUNK) {
    const n = Math.min(CHUNK, a.length - s);
    const xa = n === fa.length ? fa : fa.subarray(0, n);
    const xb = n === fb.length ? fb : fb.subarray(0, n);
    f16ArrayToF32(a.subarray(s, s + n), xa as Float32Array<ArrayBuffer>);
    f16ArrayToF32(b.subarray(s, s + n), xb as Float32Array<ArrayBuffer>);
    if (sign === 1) for (let i = 0; i < n; i++) xa[i] += xb[i];
    else for (let i = 0; i < n; i++) xa[i] -= xb[i];
    f32ArrayToF16(xa, out.subarray(s, s + n));
  }
  return out;
}

const shapeStr = (s: readonly number[]) => `[${s.join(',')}]`;

/**
 * Writes `out` = base + delta (or, `reverse`, delta = target − base with the target given as
 * `delta`). Names and shapes are checked before any data is read: the delta side must be the LLaMA
 * its config.json describes, and the base must hold exactly the same tensors with the same shapes.
 * Returns the tensor count and the bytes written.
 */
export async function applyDelta(o: ApplyDeltaOptions): Promise<{ tensors: number; bytes: number; files: string[] }> {
  const note = o.onNote ?? noteOnStderr;
  const out = path.resolve(o.out);
  if (existsSync(out) && readdirSync(out).length > 0) throw new UserError(`${o.out}: exists and is not empty (apply-delta writes a new directory)`);
  const deltaRole = o.reverse ? 'target' : 'delta';
  const cfg = loadLlamaConfig(o.delta);
  const delta = openLlamaWeights(o.delta, cfg, { onNote: note });
  let base: WeightsSource | null = null;
  const tmp = tempPathFor(out);
  try {
    base = openWeights(o.base);
    const specs = llamaWeightSpecs(cfg);
    const wanted = new Set(specs.map((s) => s.name));
    for (const s of specs) {
      if (!base.has(s.name)) throw new UserError(`${base.source}: missing tensor ${s.name} (the ${deltaRole} ${o.delta} has it)`);
      const shape = base.info(s.name).shape;
      if (shapeStr(shape) !== shapeStr(s.shape)) {
        throw new UserError(`${base.fileOf(s.name).path}: ${s.name} has shape ${shapeStr(shape)}, the ${deltaRole} has ${shapeStr(s.shape)}`);
      }
    }
    for (const n of base.names()) {
      // A tied config's lm_head is not a weight (openLlamaWeights says so for the delta side).
      if (wanted.has(n) || IGNORED.test(n) || (n === LM_HEAD && cfg.tie_word_embeddings)) continue;
      throw new UserError(`${base.fileOf(n).path}: tensor ${n} is not in the ${deltaRole} ${delta.source}`);
    }

    if (!existsSync(path.join(o.delta, 'tokenizer.model'))) {
      note(`${o.delta}: no tokenizer.model to copy; wgpu-char's commands need it in ${o.out} (copy the base model's if the vocabularies agree)`);
    }
    const b = base;
    let done = 0;
    const toWrite: TensorToWrite[] = specs.map((s) => ({
      name: s.name,
      dtype: 'F16',
      shape: s.shape,
      data: () => {
        const x = readF16Bits(b, s.name);
        const y = readF16Bits(delta, s.name);
        // apply: base + delta; reverse: target − base, with the target read from the --delta side.
        const r = o.reverse ? combineF16(y, x, -1) : combineF16(x, y, 1);
        const bad = firstNonFinite(r);
        if (bad >= 0) {
          throw new UserError(`${o.out}: ${s.name} element ${bad} overflows f16 (${f16BitsToF32(x[bad])} ${o.reverse ? 'subtracted from' : '+'} ${f16BitsToF32(y[bad])})`);
        }
        o.onTensor?.(s.name, done++, specs.length);
        return r;
      },
    }));

    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const files = await writeSafetensorsSharded(tmp, toWrite, { maxShardBytes: o.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES });
    // config.json as the delta side wrote it (unknown keys kept), with the dtype of what we wrote.
    const cfgFile = path.join(o.delta, 'config.json');
    const cfgJson = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    writeFileAtomic(path.join(tmp, 'config.json'), JSON.stringify({ ...cfgJson, torch_dtype: 'float16' }, null, 2) + '\n');
    files.push('config.json');
    for (const f of TOKENIZER_FILES) {
      if (!existsSync(path.join(o.delta, f))) continue;
      copyFileSync(path.join(o.delta, f), path.join(tmp, f));
      files.push(f);
    }
    if (existsSync(out)) rmdirSync(out); // checked empty above
    renameSync(tmp, out);
    return { tensors: specs.length, bytes: specs.reduce((a, s) => a + numel(s.shape) * 2, 0), files };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    delta.close();
    base?.close();
  }
}
