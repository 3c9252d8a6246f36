/**
 * Reading a checkpoint's config.json, apart from the weights' loader (hf-checkpoint.ts) so that a
 * command can check its settings against the model (the context, --max-new-tokens) before any GPU
 * code is loaded.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { parseLlamaConfig, type LlamaConfig } from '../model/config.ts';

/** Reads and validates `<dir>/config.json`. */
export function loadLlamaConfig(dir: string): LlamaConfig {
  const file = path.join(dir, 'config.json');
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
