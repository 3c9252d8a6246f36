import OpenAI from 'openai';

/**
 * One chat completion per prompt through any OpenAI-compatible endpoint, with our own retry loop
 * (the SDK's built-in retries are switched off so that every attempt is visible, logged and
 * bounded by our policy).
 *
 * Retried: 429 (waiting at least its Retry-After), 408/409/5xx, connection errors, timeouts,
 * and replies with no text. Not retried: other 4xx (the item fails). Fatal for the whole run:
 * 401/403/404 (bad key, no access, unknown model or URL: every other item would fail the same way).
 */

export type GenerationSettings = {
  baseURL: string;
  apiKey: string;
  model: string;
  temperature: number;
  topP: number;
  /** Omitted from the request when undefined (the original sends no limit). */
  maxTokens?: number;
  /** The original sends "You are a helpful assistant." as the system message. */
  systemPrompt: string;
  /** Per-attempt timeout. */
  timeoutMs: number;
  /**
   * 'chat' (default): POST /chat/completions with the system message and the prompt as the user
   * message. 'completions': POST /completions with the raw prompt and no system message (how the
   * interviews call a trained character: its prompt is already the whole SFT-format text).
   */
  endpoint?: 'chat' | 'completions';
  /** Stop strings; omitted from the request when undefined. */
  stop?: string[];
};

export type RetryPolicy = {
  /** Attempts after the first one; the item fails after 1 + maxRetries attempts. */
  maxRetries: number;
  /** First backoff delay; doubles per attempt, up to maxDelayMs, with jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** A server asking for a longer Retry-After than this is waited on for this long at most. */
  maxRetryAfterMs: number;
};

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxRetries: 5, baseDelayMs: 1000, maxDelayMs: 60_000, maxRetryAfterMs: 300_000 };

export type Usage = { prompt_tokens: number; completion_tokens: number };

export type AttemptError = { attempt: number; reason: string; delayMs: number };

export type CompletionOutcome =
  | { ok: true; text: string; finishReason: string; usage: Usage; attempts: number }
  | { ok: false; reason: string; attempts: number; fatal: boolean };

export type ErrorClass = { retryable: boolean; fatal: boolean; reason: string; retryAfterMs?: number };

class EmptyReplyError extends Error {}

/** Seconds (`Retry-After: 2`), an HTTP date, or OpenAI's `retry-after-ms`; undefined when absent or unreadable. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.get('retry-after-ms') !== null && Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = Number(value);
  if (value.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function classifyError(error: unknown, timeoutMs: number): ErrorClass {
  if (error instanceof EmptyReplyError) return { retryable: true, fatal: false, reason: error.message };
  if (error instanceof OpenAI.APIConnectionTimeoutError) return { retryable: true, fatal: false, reason: `timeout after ${timeoutMs / 1000}s` };
  if (error instanceof OpenAI.APIConnectionError) return { retryable: true, fatal: false, reason: `connection error${rootCause(error)}` };
  if (error instanceof OpenAI.APIError && typeof error.status === 'number') {
    const status = error.status;
    const detail = firstLine(error.message);
    if (status === 429) {
      const after = retryAfterMs(error.headers);
      return { retryable: true, fatal: false, reason: `429 rate limited${after !== undefined ? ` (Retry-After ${after / 1000}s)` : ''}`, retryAfterMs: after };
    }
    if (status >= 500 || status === 408 || status === 409) return { retryable: true, fatal: false, reason: `HTTP ${status}: ${detail}`, retryAfterMs: retryAfterMs(error.headers) };
    if (status === 401 || status === 403 || status === 404) return { retryable: false, fatal: true, reason: `HTTP ${status}: ${detail}` };
    return { retryable: false, fatal: false, reason: `HTTP ${status}: ${detail}` };
  }
  // Anything else (an unreadable body, a proxy's HTML page) may well be transient.
  return { retryable: true, fatal: false, reason: `unexpected error: ${firstLine(error instanceof Error ? error.message : String(error))}` };
}

/** fetch wraps the useful part ("connect ECONNREFUSED 127.0.0.1:9") a few causes deep. */
function rootCause(error: Error): string {
  let cause: unknown = error.cause;
  let message = '';
  for (let depth = 0; cause instanceof Error && depth < 5; depth++) {
    message = cause.message;
    cause = cause.cause;
  }
  return message ? `: ${firstLine(message)}` : '';
}

function firstLine(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > 200 ? line.slice(0, 200) + '…' : line;
}

/** Exponential backoff with "equal jitter": half the delay fixed, half random, so retries of many workers spread out. */
export function backoffDelayMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class CompletionClient {
  private readonly client: OpenAI;

  constructor(
    readonly settings: GenerationSettings,
    readonly retry: RetryPolicy,
  ) {
    this.client = new OpenAI({ apiKey: settings.apiKey, baseURL: settings.baseURL, maxRetries: 0, timeout: settings.timeoutMs });
  }

  /** One attempt; throws on transport errors and on an empty reply. */
  private async attempt(prompt: string): Promise<{ text: string; finishReason: string; usage: Usage }> {
    const s = this.settings;
    const common = {
      model: s.model,
      temperature: s.temperature,
      top_p: s.topP,
      frequency_penalty: 0,
      presence_penalty: 0,
      ...(s.maxTokens !== undefined ? { max_tokens: s.maxTokens } : {}),
      ...(s.stop !== undefined ? { stop: s.stop } : {}),
    };
    let text: string;
    let finishReason: string | undefined;
    let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
    let hasChoice: boolean;
    if (s.endpoint === 'completions') {
      const response = await this.client.completions.create({ ...common, prompt }, { timeout: s.timeoutMs });
      const choice = response.choices?.[0];
      hasChoice = choice !== undefined;
      text = choice?.text ?? '';
      finishReason = choice?.finish_reason ?? undefined;
      usage = response.usage;
    } else {
      const response = await this.client.chat.completions.create(
        {
          ...common,
          messages: [
            { role: 'system', content: s.systemPrompt },
            { role: 'user', content: prompt },
          ],
        },
        { timeout: s.timeoutMs },
      );
      const choice = response.choices?.[0];
      hasChoice = choice !== undefined;
      text = choice?.message?.content ?? '';
      finishReason = choice?.finish_reason ?? undefined;
      usage = response.usage;
    }
    if (text.trim() === '') throw new EmptyReplyError(hasChoice ? 'empty reply' : 'reply without choices');
    return {
      text,
      finishReason: finishReason ?? 'unknown',
      usage: { prompt_tokens: usage?.prompt_tokens ?? 0, completion_tokens: usage?.completion_tokens ?? 0 },
    };
  }

  /** Tries up to 1 + maxRetries times; `onRetry` is told about each failed attempt before the wait. */
  async complete(prompt: string, onRetry?: (e: AttemptError) => void): Promise<CompletionOutcome> {
    const maxAttempts = 1 + this.retry.maxRetries;
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = await this.attempt(prompt);
        return { ok: true, ...reply, attempts: attempt };
      } catch (error) {
        const kind = classifyError(error, this.settings.timeoutMs);
        if (!kind.retryable || attempt >= maxAttempts) {
          const reason = kind.retryable ? `${kind.reason} (gave up after ${attempt} attempts)` : kind.reason;
          return { ok: false, reason, attempts: attempt, fatal: kind.fatal };
        }
        let delayMs = backoffDelayMs(attempt, this.retry);
        if (kind.retryAfterMs !== undefined) delayMs = Math.max(delayMs, Math.min(kind.retryAfterMs, this.retry.maxRetryAfterMs));
        onRetry?.({ attempt, reason: kind.reason, delayMs: Math.round(delayMs) });
        await sleep(delayMs);
      }
    }
  }
}
