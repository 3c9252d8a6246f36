/**
 * The logprobs of a choice in OpenAI's two shapes, from the per-token values generation reports
 * (`TokenLogprob`, src/gen/sequence.ts: the distribution after the repetition penalty, before
 * temperature and top-p; a token's text is its own bytes as UTF-8, "▁" a space).
 *
 * - Completions (legacy): `{tokens, token_logprobs, top_logprobs: [{text: logprob}], text_offset}`;
 *   each `top_logprobs` entry holds the `logprobs` alternatives and the sampled token too (so up to
 *   logprobs + 1 entries, as OpenAI documents; two tokens with the same text keep the likelier);
 *   `text_offset` is where the token's text starts in the choice's text (after an echoed prompt),
 *   counted as the streamed text grows, so the first token's dropped leading space and a character
 *   split over byte tokens are where the text has them.
 * - Chat: `{content: [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}`.
 *
 * Both cover every sampled token: the EOS (text "") and the tokens of a stop string that was cut
 * from the text included, and for chat the action head ("speaking): ") that the reply drops.
 */
import type { StreamDecoder, Tokenizer } from '../data/tokenizer.ts';
import type { TokenAlternative, TokenLogprob } from '../gen/sequence.ts';

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/** One choice's legacy logprobs, taken in pieces as its tokens come (`take` continues the offsets). */
export class CompletionLogprobsBuilder {
  private readonly decoder: StreamDecoder;

  /** `offset`: where the generated text starts in the choice's text (the echoed prompt's length, or 0). */
  constructor(tokenizer: Tokenizer, private offset: number) {
    this.decoder = tokenizer.createStreamDecoder();
  }

  take(tokens: readonly TokenLogprob[]): CompletionLogprobs {
    const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    for (const t of tokens) {
      out.tokens.push(t.text);
      out.token_logprobs.push(t.logprob);
      // No prototype: a token's text may be "__proto__" or "constructor".
      const top: Record<string, number> = Object.create(null);
      for (const a of [...t.top, t]) if (!Object.hasOwn(top, a.text)) top[a.text] = a.logprob;
      out.top_logprobs.push(top);
      out.text_offset.push(this.offset);
      this.offset += this.decoder.push(t.token).length;
    }
    return out;
  }
}

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

/** Chat's `logprobs.content` entries of `tokens`. */
export function chatLogprobs(tokenizer: Tokenizer, tokens: readonly TokenLogprob[]): ChatTokenLogprob[] {
  const entry = (a: TokenAlternative) => ({ token: a.text, logprob: a.logprob, bytes: Array.from(tokenizer.tokenBytes(a.token)) });
  return tokens.map((t) => ({ ...entry(t), top_logprobs: t.top.map(entry) }));
}
