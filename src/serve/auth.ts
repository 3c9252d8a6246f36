/**
 * API keys of `wgpu-char serve` (`--api-key`, `WGPU_CHAR_API_KEY`): with keys set, a request must
 * carry `Authorization: Bearer <key>` (what every OpenAI client sends from its `api_key`), else it
 * is answered 401 in OpenAI's shape, `error: {message, type: "invalid_request_error", param: null,
 * code: "invalid_api_key"}` (FastChat's `check_api_key` answers the same code for a missing and a
 * wrong key; the FastChat-shaped top level carries 40101 or 40102 to tell them apart). The answer
 * never repeats the key it got: it would land in logs.
 *
 * Keys are compared in constant time: each key given and the one presented are hashed (SHA-256)
 * and the digests compared with `timingSafeEqual`, against EVERY key, so neither the length of a
 * key, nor how much of it matched, nor which key matched shows in the answer's timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ApiError, ErrorCode } from './errors.ts';

/** RFC 6750: a 401 names the scheme the server wants. */
const CHALLENGE = { 'WWW-Authenticate': 'Bearer' };

/** Why `key` cannot be an API key, or null if it can. */
export function apiKeyProblem(key: string): string | null {
  if (key === '') return 'an API key cannot be empty';
  // A header value cannot carry control characters, and HTTP trims spaces around it: a key with
  // whitespace or controls could never be presented as given.
  if (/[\s\x00-\x1f\x7f]/.test(key)) return 'an API key cannot contain whitespace or control characters';
  return null;
}

/** The keys in `WGPU_CHAR_API_KEY`'s value: comma-separated, spaces around each trimmed, empty entries skipped. */
export function apiKeysFromEnv(value: string): string[] {
  return value
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class ApiKeys {
  private readonly digests: Buffer[];

  /** Throws on an empty key list or an unusable key (see `apiKeyProblem`). */
  constructor(keys: readonly string[]) {
    if (keys.length === 0) throw new Error('ApiKeys: no keys');
    for (const k of keys) {
      const problem = apiKeyProblem(k);
      if (problem) throw new Error(`ApiKeys: ${problem}`);
    }
    this.digests = keys.map(digest);
  }

  /** Throws the 401 for a request whose Authorization header (`authorization`) carries none of the keys. */
  check(authorization: string | undefined): void {
    const m = /^Bearer[ \t]+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) {
      throw new ApiError(
        ErrorCode.INVALID_AUTH_KEY,
        "You didn't provide an API key. This server needs one in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY; the openai clients send their api_key so).",
        401,
        { openaiCode: 'invalid_api_key', headers: CHALLENGE },
      );
    }
    const presented = digest(m[1]!);
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(d, presented) || ok; // no short cut: every key is compared
    if (!ok) {
      throw new ApiError(ErrorCode.INCORRECT_AUTH_KEY, 'Incorrect API key provided.', 401, {
        openaiCode: 'invalid_api_key',
        headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
      });
    }
  }
}

/**
 * Whether listening on `host` keeps the server to this machine: the loopback addresses
 * (127.0.0.0/8, ::1, ::ffff:127.x) and the name `localhost`. Any other name counts as reachable
 * from outside (it may resolve anywhere), as do 0.0.0.0 and :: (every interface).
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^(0:){7}1$/.test(h) || /^::ffff:127\./.test(h);
  return false;
}
