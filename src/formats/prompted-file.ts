/** Reading a prompted SFT file (JSON array or JSONL of {prompt, output, source?}; format: src/data/sft.ts) from disk. */
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import type { PromptedSample } from '../data/prompted.ts';
import { parsePromptedText } from '../data/sft.ts';

export function readPromptedFile(file: string): PromptedSample[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parsePromptedText(text, file);
}
