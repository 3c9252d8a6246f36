/** The API key and retry policy of the evaluation commands' OpenAI-compatible clients. */
import { UserError } from '../errors.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../data/pipeline/client.ts';

/** The key from `$envName`; local servers (our `serve`, vLLM) need none, but the client requires a string. */
export function apiKeyFrom(envName: string, baseURL: string, flag: string): string {
  const key = process.env[envName];
  if (key) return key;
  if (/^https?:\/\/api\.openai\.com(\/|$)/.test(baseURL)) throw new UserError(`$${envName} is not set: ${flag} ${baseURL} needs an API key`);
  return 'EMPTY';
}

export type RetryOptions = { maxRetries: number; backoffBaseMs: number; backoffMaxMs: number };

export function retryPolicyOf(opts: RetryOptions): RetryPolicy {
  return { ...DEFAULT_RETRY_POLICY, maxRetries: opts.maxRetries, baseDelayMs: opts.backoffBaseMs, maxDelayMs: opts.backoffMaxMs };
}
