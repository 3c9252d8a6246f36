/**
 * Reading a checkpoint's config.json, apart from the weights' loader (hf-checkpoint.ts) so that a
 * command can check its settings against the model (the context, --max-new-tokens) before any GPU
 * code is loaded.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { eosTokenIds, parseLlamaConfig, type LlamaConfig } from '../model/config.ts';
import type { Tokenizer } from '../data/tokenizer.ts';
import { noteOnStderr, type Note } from '../notes.ts';

/** Reads and validates `<dir>/config.json`. */
export function loadLlamaConfig(dir: string): LlamaConfig {
  return readConfigFile(path.join(dir, 'config.json'));
}

/** Reads and validates a config.json file (of any name, e.g. a bare LLaMA-7B config for `plan`). */
export function readConfigFile(file: string): LlamaConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${file}: cannot read (${code === 'ENOENT' ? 'no such file; is this a HF checkpoint directory?' : code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: invalid JSON (${(e as Error).message})`);
  }
  return parseLlamaConfig(json, file);
}

/**
 * The model directory's tokenizer.model against its config.json (both in one directory): more
 * pieces than vocab_size is a UserError (ids past the embedding); a BOS or EOS the config names
 * differently is said once each on `onNote`, as neither is changed: prompts start with the
 * tokenizer's BOS (as transformers' tokenizer does), generation stops at config.json's eos_token_id.
 */
export function checkTokenizerAgainstConfig(cfg: LlamaConfig, tokenizer: Tokenizer, onNote: Note = noteOnStderr): void {
  const configFile = path.join(path.dirname(tokenizer.path), 'config.json');
  if (tokenizer.vocabSize > cfg.vocab_size) {
    throw new UserError(`${tokenizer.path}: ${tokenizer.vocabSize} pieces, but config.json's vocab_size is ${cfg.vocab_size}`);
  }
  if (tokenizer.bosId >= 0 && cfg.bos_token_id !== tokenizer.bosId) {
    onNote(`${configFile}: bos_token_id ${cfg.bos_token_id} is not tokenizer.model's BOS (${tokenizer.bosId}): prompts start with the tokenizer's, as transformers' tokenizer does`);
  }
  const eos = eosTokenIds(cfg);
  if (tokenizer.eosId >= 0 && !eos.includes(tokenizer.eosId)) {
    const list = JSON.stringify(cfg.eos_token_id);
    onNote(`${configFile}: eos_token_id ${list} does not include tokenizer.model's EOS (${tokenizer.eosId}), which training appends: generation stops only at ${list}`);
  }
}
