/**
 * How long a prompt is, in tokens, without letting a huge one hold the server: a lower bound from
 * its length in characters that needs no tokenising, and the exact count tokenised in chunks that
 * give the event loop a turn between them (`Tokenizer.encodeAsync`).
 *
 * The lower bound. Sentencepiece encodes the normalised text as a sequence of pieces, each piece
 * covering a stretch of it: a NORMAL or USER_DEFINED piece exactly its own text ("▁" standing for
 * one space), a BYTE piece one byte of one character. So if no piece is longer than L UTF-16 units,
 * a text of n units needs at least ceil(n / L) pieces. That holds for the text as the client sent
 * it only when normalising cannot shorten it, i.e. when the model has
 * - no precompiled normalisation rules (NFKC and the like can fold several characters into one),
 * - no `remove_extra_whitespaces` (it collapses runs of spaces into one),
 * - `byte_fallback` (without it, sentencepiece merges every run of unknown characters into ONE
 *   `<unk>` token, so a megabyte of them can be a single token).
 * The LLaMA tokenizers (and weights/tiny's) meet all three; L is read off the vocabulary (16 for
 * weights/tiny's, "▁experimentation"). A prompt longer than L × context units cannot fit and is
 * refused before tokenising; anything shorter is at most L contexts' worth of text (with L = 16,
 * 64 K units at a 4096 context), which tokenises in tens of milliseconds on a 2-core machine
 * (7 MB took 4 to 18 s there). A model that fails a condition gets no bound (every prompt is
 * tokenised, in yielding chunks) rather than a wrong one. UTF-16 units are what `string.length`
 * counts; a character outside the BMP is 2 units and at least 1 token (≥ 4 byte pieces or one piece
 * of ≥ 2 units), so counting units keeps the bound true. Lone surrogates become U+FFFD (1 unit for 1).
 */
import type { Tokenizer } from '../data/tokenizer.ts';
import { PieceType } from '../data/sentencepiece-model.ts';

const boundCache = new WeakMap<Tokenizer, number | null>();

/**
 * The most UTF-16 units of the client's text one token can stand for, or null when the model's
 * normaliser or lack of byte fallback leaves no such bound (see the file header).
 */
export function maxUnitsPerToken(tokenizer: Tokenizer): number | null {
  if (boundCache.has(tokenizer)) return boundCache.get(tokenizer)!;
  const { trainerSpec, normalizerSpec, pieces } = tokenizer.model;
  let bound: number | null = null;
  if (trainerSpec.byteFallback && normalizerSpec.precompiledCharsmapLength === 0 && !normalizerSpec.removeExtraWhitespaces) {
    // Byte pieces ("<0x0A>") cover one byte of a character of at most 2 units: at least 2.
    bound = 2;
    for (const p of pieces) if (p.type !== PieceType.BYTE && p.piece.length > bound) bound = p.piece.length;
  }
  boundCache.set(tokenizer, bound);
  return bound;
}

/**
 * At least how many tokens `encode(text, {bos: true})` gives, computed from the length alone; 1
 * (the BOS) when the model gives no bound.
 */
export function promptTokensAtLeast(tokenizer: Tokenizer, text: string): number {
  const perToken = maxUnitsPerToken(tokenizer);
  return 1 + (perToken === null ? 0 : Math.ceil(text.length / perToken));
}

/** Prompt tokens as the generator counts them (BOS included), tokenised without blocking the event loop for long. */
export async function countPromptTokens(tokenizer: Tokenizer, prompt: string): Promise<number> {
  return (await tokenizer.encodeAsync(prompt, { bos: true })).length;
}
