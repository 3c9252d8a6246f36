/**
 * The "prompted" SFT data as the paper's trainer reads it (FastChat's train.py with
 * --already_preprocess), shared by `train` and `eval`.
 *
 * File: a JSON array or JSONL of `{prompt, output, source?}` — told apart by content (first
 * non-blank character `[` = array), not by extension. A malformed line is an error naming the file
 * and line number.
 *
 * Tokens: ids = [BOS] + sp(prompt + output) + [EOS]. The first 1 + len(sp(prompt)) positions carry
 * no loss; every later position (the EOS included) is a next-token target. Truncation to max-len
 * cuts the right end (a truncated sample loses its EOS, as in the reference trainer).
 */
import { UserError } from '../errors.ts';
import type { PromptedSample } from './prompted.ts';
import type { Tokenizer } from './tokenizer.ts';

/** The samples of a prompted file's text; `file` names it in the errors (reading it from disk: src/formats/prompted-file.ts). */
export function parsePromptedText(text: string, file: string): PromptedSample[] {
  const samples: PromptedSample[] = [];
  const check = (v: unknown, where: string): PromptedSample => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UserError(`${where}: expected an object {"prompt", "output"}`);
    const o = v as Record<string, unknown>;
    if (typeof o.prompt !== 'string') throw new UserError(`${where}: "prompt" missing or not a string`);
    if (typeof o.output !== 'string') throw new UserError(`${where}: "output" missing or not a string`);
    if (o.source !== undefined && typeof o.source !== 'string') throw new UserError(`${where}: "source" is not a string`);
    return { prompt: o.prompt, output: o.output, ...(o.source !== undefined ? { source: o.source as string } : {}) };
  };
  if (text.trimStart().startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (e) {
      throw new UserError(`${file}: invalid JSON array (${(e as Error).message})`);
    }
    if (!Array.isArray(arr)) throw new UserError(`${file}: expected a JSON array`);
    arr.forEach((v, i) => samples.push(check(v, `${file}: item ${i + 1}`)));
  } else {
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        throw new UserError(`${file}:${i + 1}: malformed JSON line (${(e as Error).message})`);
      }
      samples.push(check(v, `${file}:${i + 1}`));
    });
  }
  if (samples.length === 0) throw new UserError(`${file}: no samples`);
  return samples;
}

export interface TokenizedSample {
  /** [BOS] + sp(prompt + output) + [EOS], truncated to maxLen. */
  ids: number[];
  /** Index of the first position that is a target (1 + len(sp(prompt))). */
  targetStart: number;
  truncated: boolean;
}

/** Tokenizes one sample; returns null when the prompt alone does not fit (no target would remain). */
export function tokenizeSample(tok: Tokenizer, s: PromptedSample, maxLen: number): TokenizedSample | null {
  const full = [tok.bosId, ...tok.encode(s.prompt + s.output), tok.eosId];
  const targetStart = 1 + tok.encode(s.prompt).length;
  if (targetStart >= Math.min(maxLen, full.length)) return null;
  const truncated = full.length > maxLen;
  return { ids: truncated ? full.slice(0, maxLen) : full, targetStart, truncated };
}

/**
 * Next-token targets for row t of a sequence (logits at t predict ids[t + 1]): ids[t + 1] when
 * t + 1 ≥ targetStart, else -1; rows past the sequence (padding) are -1.
 */
export function nextTokenTargets(sample: TokenizedSample, rows: number): Int32Array {
  const targets = new Int32Array(rows).fill(-1);
  for (let t = 0; t + 1 < sample.ids.length && t < rows; t++) {
    if (t + 1 >= sample.targetStart) targets[t] = sample.ids[t + 1];
  }
  return targets;
}

/**
 * A batch of samples padded to the longest: ids and next-token targets of B sequences × T rows
 * (sample b, position t at row b·T + t). Padding rows carry id `padId` (any valid token: causal
 * attention keeps padding out of the real rows) and no target.
 */
export function padBatch(samples: readonly TokenizedSample[], padId: number): { B: number; T: number; ids: Uint32Array<ArrayBuffer>; targets: Int32Array<ArrayBuffer>; targetCount: number } {
  const B = samples.length;
  const T = Math.max(...samples.map((s) => s.ids.length));
  const ids = new Uint32Array(B * T).fill(padId);
  const targets = new Int32Array(B * T);
  let count = 0;
  samples.forEach((s, b) => {
    ids.set(s.ids, b * T);
    targets.set(nextTokenTargets(s, T), b * T);
    count += targetCount(s);
  });
  return { B, T, ids, targets, targetCount: count };
}

/** Number of target tokens of a sample. */
export function targetCount(sample: TokenizedSample): number {
  return sample.ids.length - sample.targetStart;
}
