/**
 * The context a decoding command (chat, generate, serve) runs in, and what must fit it. Pure: the
 * commands check their options with it as soon as config.json is read, before the GPU starts.
 *
 * Accounting (OpenAI's, which serve's 400 also uses): prompt tokens (BOS included) plus new tokens
 * at most the context. The last new token is never fed back, so this leaves one position spare.
 */
import { UserError } from '../errors.ts';
import { noteOnStderr, type Note } from '../notes.ts';

/**
 * `--context`, or the model's max_position_embeddings when not given. One above the maximum is
 * lowered to it and said once on `note` (the RoPE table and the model's training end there).
 */
export function resolveContext(requested: number | undefined, maxPositions: number, note: Note = noteOnStderr): number {
  if (requested === undefined) return maxPositions;
  if (requested > maxPositions) {
    note(`--context ${requested} exceeds the model's max_position_embeddings ${maxPositions}: using ${maxPositions}`);
    return maxPositions;
  }
  return requested;
}

/** Prompt tokens (BOS included) that fit with `maxNewTokens` new ones: the context less them. */
export function promptRoom(context: number, maxNewTokens: number): number {
  return context - maxNewTokens;
}

/**
 * Throws a one-line UserError when `--max-new-tokens` leaves no room for a prompt (BOS at least)
 * in `context` tokens: `maxPositions` is the model's maximum (the context unless --context is smaller).
 */
export function checkMaxNewTokens(maxNewTokens: number, context: number, maxPositions: number): void {
  if (promptRoom(context, maxNewTokens) >= 1) return;
  const where = context < maxPositions ? `--context ${context}` : `the model's max_position_embeddings`;
  const larger = context < maxPositions ? `, or a larger --context (up to ${maxPositions})` : '';
  throw new UserError(`--max-new-tokens ${maxNewTokens} leaves no room for the prompt in the ${context}-token context (${where}): give at most ${context - 1}${larger}`);
}
