/**
 * The errors `wgpu-char serve` answers with. The body is FastChat's error object
 * `{object:"error", message, code}` with FastChat's `ErrorCode` numbers, and repeats it under
 * `error` in OpenAI's shape `{message, type, param, code}`: the openai clients read only `error`
 * (with FastChat's shape alone they report "400 status code (no body)"). Where OpenAI has a string
 * code of its own for the case (`invalid_api_key`), `error.code` is that string instead of the number.
 * `error.type` is "server_error" for a 5xx and for a 429 (the server is busy, the request was fine).
 */
import { QueueFull } from '../gen/continuous.ts';

/** FastChat's `ErrorCode` values used here. */
export const ErrorCode = {
  /** Malformed JSON, or a field of the wrong type. */
  VALIDATION_TYPE_ERROR: 40001,
  /** A model name the server does not serve. */
  INVALID_MODEL: 40301,
  /** A field outside its range, or a feature this server does not support. */
  PARAM_OUT_OF_RANGE: 40302,
  /** Prompt tokens + max_tokens over the context length. */
  CONTEXT_OVERFLOW: 40303,
  /** No `Authorization: Bearer <key>` header (FastChat's INVALID_AUTH_KEY). */
  INVALID_AUTH_KEY: 40101,
  /** A key the server was not given (FastChat's INCORRECT_AUTH_KEY). */
  INCORRECT_AUTH_KEY: 40102,
  /**
   * Every slot is busy and the queue is full (FastChat's ENGINE_OVERLOADED): a 429 with
   * Retry-After, which the openai clients wait for and retry.
   */
  ENGINE_OVERLOADED: 42903,
  /** A failure inside generation. */
  INTERNAL_ERROR: 50001,
  /**
   * The server is shutting down (SIGTERM/SIGINT): a request that arrives while it drains, or one it
   * had to cut when the drain timed out. Ours: FastChat has no such code (its workers just die).
   */
  SHUTTING_DOWN: 50301,
} as const;

/** What an ApiError may add to its answer. */
export interface ApiErrorExtras {
  /** OpenAI's string code for the case, answered as `error.code` in place of the number. */
  openaiCode?: string;
  /** Response headers (e.g. Retry-After on a 503, WWW-Authenticate on a 401). */
  headers?: Record<string, string>;
}

/** An error answered with FastChat's error object and an HTTP status (400 unless said). */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly status = 400,
    readonly extras: ApiErrorExtras = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Anything thrown while answering, as the error the client gets: a full queue is a 429, an unexpected error a 500. */
export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof QueueFull) return new ApiError(ErrorCode.ENGINE_OVERLOADED, e.message, 429, { headers: { 'Retry-After': String(e.retryAfterSeconds) } });
  return new ApiError(ErrorCode.INTERNAL_ERROR, `internal error: ${(e as Error)?.message ?? String(e)}`, 500);
}

/** The response body for `e`, in both shapes (see the file header). */
export function errorBody(e: ApiError): Record<string, unknown> {
  const type = e.status >= 500 || e.status === 429 ? 'server_error' : 'invalid_request_error';
  return { object: 'error', message: e.message, code: e.code, error: { message: e.message, type, param: null, code: e.extras.openaiCode ?? e.code } };
}
