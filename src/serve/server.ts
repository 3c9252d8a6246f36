/**
 * `wgpu-char serve`: an OpenAI-compatible HTTP API over one of our models, standing in for
 * FastChat's controller + model_worker + openai_api_server as the Character-LLM paper runs them.
 * The base URL for clients ends in `/v1`. `startServer` wires the model to the routes:
 * - GET /v1/models, GET /v1/models/{id}: the served name(s) (models.ts).
 * - POST /v1/completions: the raw prompt, no template (what the paper's interview scripts call,
 *   with `stop="<|eot|>"`); POST /v1/chat/completions: the messages as the paper's character
 *   prompt (src/gen/chat-prompt.ts); POST /api/v1/token_check: FastChat's `{prompts:[{model,
 *   prompt, max_tokens}]}` -> `{prompts:[{fits, tokenCount, contextLength}]}` (completions.ts).
 * - GET /health: `{"status":"ok"}`, open without an API key, not logged when it answers 200 (a
 *   load balancer or supervisor polls it).
 * - GET /: the chat page, a browser client of the chat endpoint (web.ts; open without a key too).
 * - GET /metrics (a batching generator only: ContinuousBatcher): its counters in Prometheus' text
 *   format (metrics.ts); behind the API key like the API (its counts are usage data; Prometheus
 *   sends a bearer token with `authorization: {credentials: ...}` in its scrape config), not logged
 *   when it answers 200 (a scraper polls it).
 * Request fields and their checks: openai.ts. Errors: errors.ts. Streaming: sse.ts. Which request
 * has the model when, and the 429 of a full queue: scheduler.ts. Listening, routing and bodies:
 * http.ts. What the handlers share: app.ts. API keys: auth.ts (with `apiKeys`, every route but
 * /health needs `Authorization: Bearer`).
 *
 * Shutting down (`drain`, which `serve` calls on SIGTERM/SIGINT): the server stops taking work but
 * keeps listening, so that a new request (health checks included) gets a clear 503 with Retry-After
 * rather than a refused connection; the requests it has (generating, queued, or still being read
 * and checked) run to their end for up to the drain time. Then the ones left are cut (scheduler.ts):
 * a started stream ends with finish_reason "abort" and [DONE], anything else is answered 503. Last,
 * `close`. A drain never waits on a client: a request still uploading its body when the time is up
 * gets ABORT_GRACE_MS more, then its connection is closed.
 */
import type { CharacterSpec } from '../gen/chat-prompt.ts';
import { ApiKeys } from './auth.ts';
import { chatCompletions, completions, tokenCheck } from './completions.ts';
import { ApiError, ErrorCode } from './errors.ts';
import { listen, sendJson, sendText, type Route } from './http.ts';
import { METRICS_CONTENT_TYPE, prometheusText } from './metrics.ts';
import { listModels, retrieveModel } from './models.ts';
import { isBatching, RequestScheduler, ServerStopping, type TextGenerator } from './scheduler.ts';
import { webRoutes } from './web.ts';
import type { ServeApp } from './app.ts';

/**
 * After the drain time, how long the cut requests get to end (a generation stops at its next piece
 * of text; a request still uploading has no such point) before the connections are closed.
 */
const ABORT_GRACE_MS = 2000;

export interface ServerOptions {
  /** One generation at a time (Generator), or a batching one (ContinuousBatcher): see scheduler.ts. */
  generator: TextGenerator;
  /** The served model name(s); requests must name one of them. */
  modelName: string | string[];
  host?: string;
  /** 0 picks a free port. Default 8000 (FastChat's, and what the paper's clients hard-code). */
  port?: number;
  /** Character for chat requests that carry neither a `character` field nor a usable system message. */
  character?: CharacterSpec;
  /** Speaker name of `user` messages without a `name` (default "Man", as in the paper's interviews). */
  userName?: string;
  /** One line per request (method, path, status, tokens, seconds). */
  log?: (line: string) => void;
  /** With keys, every route but GET /health needs `Authorization: Bearer <one of them>` (auth.ts); none: open. */
  apiKeys?: readonly string[];
}

/** What a drain did. */
export interface DrainReport {
  /** Requests the server had when the drain began (generating, queued, or being read). */
  pending: number;
  /** Of those (and of any still being read then), the ones cut when the drain time was up. */
  aborted: number;
  /** Whether the drain time ran out (then `aborted` may be > 0). */
  timedOut: boolean;
}

export interface RunningServer {
  /** Base URL for OpenAI clients, ending in `/v1` (e.g. `http://127.0.0.1:8000/v1`). */
  url: string;
  port: number;
  /** Stops accepting, drops open connections, and waits for the generations in progress to end. */
  close(): Promise<void>;
  /**
   * Graceful shutdown (see the file header): new requests get 503 from now on; the pending ones
   * get up to `timeoutMs` to finish, the rest are cut; then `close()`. Calling it again while it
   * runs brings the cut forward (to now + `timeoutMs`, if that is sooner) and returns the same report.
   */
  drain(timeoutMs: number): Promise<DrainReport>;
  /** Requests whose answer has not ended yet. */
  pendingRequests(): number;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const modelNames = Array.isArray(opts.modelName) ? [...opts.modelName] : [opts.modelName];
  if (modelNames.length === 0 || modelNames.some((n) => !n)) throw new Error('startServer: modelName must be non-empty');
  const keys = opts.apiKeys && opts.apiKeys.length > 0 ? new ApiKeys(opts.apiKeys) : null;
  const app: ServeApp = {
    modelNames,
    generator: opts.generator,
    scheduler: new RequestScheduler(opts.generator),
    chatDefaults: { character: opts.character, userName: opts.userName },
    created: Math.floor(Date.now() / 1000),
  };

  // Set once draining: when the pending requests will be cut (ms since the epoch), and how.
  let drainState: { cutAt: number; cutTimer: NodeJS.Timeout; report: Promise<DrainReport>; cut(): void } | null = null;
  /**
   * Retry-After of a 503 while draining: the seconds until this process is gone at the latest (the
   * cut, plus the grace), so the earliest time a restarted server could answer; at least 1.
   */
  const retryAfter = () => String(Math.max(1, Math.ceil(((drainState?.cutAt ?? Date.now()) + ABORT_GRACE_MS - Date.now()) / 1000)));

  const http = await listen({
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 8000,
    routes: routesOf(app),
    log: opts.log ?? (() => {}),
    guard: (req, isPublic) => {
      if (drainState) {
        throw new ApiError(ErrorCode.SHUTTING_DOWN, 'the server is shutting down and takes no new requests', 503, { headers: { 'Retry-After': retryAfter() } });
      }
      if (keys && !isPublic) keys.check(req.headers.authorization);
    },
  });
  const close = async () => {
    await http.close();
    await app.scheduler.idle();
  };

  const drain = (timeoutMs: number): Promise<DrainReport> => {
    if (!(timeoutMs >= 0)) throw new Error(`drain: timeoutMs must be >= 0, got ${timeoutMs}`);
    if (drainState) {
      if (Date.now() + timeoutMs < drainState.cutAt) {
        clearTimeout(drainState.cutTimer);
        drainState.cutAt = Date.now() + timeoutMs;
        drainState.cutTimer = setTimeout(drainState.cut, timeoutMs);
      }
      return drainState.report;
    }
    const pending = http.activeRequests();
    let timedOut = false;
    let wakeCut!: () => void;
    const cutNow = new Promise<void>((resolve) => (wakeCut = resolve));
    const cut = () => {
      timedOut = true;
      app.scheduler.abortAll(new ServerStopping({ 'Retry-After': retryAfter() }));
      wakeCut();
    };
    const report = (async (): Promise<DrainReport> => {
      await Promise.race([http.idle(), cutNow]);
      clearTimeout(drainState!.cutTimer);
      if (timedOut) await Promise.race([http.idle(), new Promise((resolve) => setTimeout(resolve, ABORT_GRACE_MS))]);
      await close();
      return { pending, aborted: app.scheduler.aborted, timedOut };
    })();
    drainState = { cutAt: Date.now() + timeoutMs, cutTimer: setTimeout(cut, timeoutMs), report, cut };
    return report;
  };

  return { url: `${http.origin}/v1`, port: http.port, close, drain, pendingRequests: () => http.activeRequests() };
}

/** The endpoints. A 404 lists the fixed paths not hidden (token_check is FastChat's internal one). */
function routesOf(app: ServeApp): Route[] {
  const generator = app.generator;
  return [
    { method: 'GET', path: '/health', public: true, quiet: true, handle: async (ex) => (sendJson(ex.res, 200, { status: 'ok' }), '') },
    ...(isBatching(generator) ? [{ method: 'GET', path: '/metrics', quiet: true, handle: async (ex) => (sendText(ex.res, 200, prometheusText(generator.metrics()), METRICS_CONTENT_TYPE), '') } satisfies Route] : []),
    { method: 'GET', path: '/v1/models', handle: (ex) => listModels(app, ex) },
    { method: 'GET', path: /^\/v1\/models\/(.+)$/, handle: (ex) => retrieveModel(app, ex) },
    { method: 'POST', path: '/v1/completions', handle: (ex) => completions(app, ex) },
    { method: 'POST', path: '/v1/chat/completions', handle: (ex) => chatCompletions(app, ex) },
    { method: 'POST', path: '/api/v1/token_check', hidden: true, handle: (ex) => tokenCheck(app, ex) },
    ...webRoutes(app),
  ];
}
