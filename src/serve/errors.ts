/**
 * The errors `wgpu-char serve` answers with. The body is FastChat's error object
 * `{object:"error", message, code}` with FastChat's `ErrorCode` numbers, and repeats it under
 * `error` in OpenAI's shape `{message, type, param, code}`: the openai clients read only `error`
 * (with FastChat's shape alone they report "400 status code (no body)").
 */

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
  /** A failure inside generation. */
  INTERNAL_ERROR: 50001,
} as const;

/** An error answered with FastChat's error object and an HTTP status (400 unless said). */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Anything thrown while answering, as the error the client gets: an unexpected one is a 500. */
export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError(ErrorCode.INTERNAL_ERROR, `internal error: ${(e as Error)?.message ?? String(e)}`, 500);
}

/** The response body for `e`, in both shapes (see the file header). */
export function errorBody(e: ApiError): Record<string, unknown> {
  const type = e.status >= 500 ? 'server_error' : 'invalid_request_error';
  return { object: 'error', message: e.message, code: e.code, error: { message: e.message, type, param: null, code: e.code } };
}
