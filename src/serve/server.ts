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
 * Request fields and their checks: openai.ts. Errors: errors.ts. Streaming: sse.ts. Which request
 * has the model when: scheduler.ts. Listening, routing and bodies: http.ts. What the handlers share:
 * app.ts. API keys: auth.ts (with `apiKeys`, every route but /health needs `Authorization: Bearer`).
 */
import type { CharacterSpec } from '../gen/chat-prompt.ts';
import { ApiKeys } from './auth.ts';
import { chatCompletions, completions, tokenCheck } from './completions.ts';
import { listen, sendJson, type Route } from './http.ts';
import { listModels, retrieveModel } from './models.ts';
import { SerialScheduler } from './scheduler.ts';
import type { ServeApp, TextGenerator } from './app.ts';

export interface ServerOptions {
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

export interface RunningServer {
  /** Base URL for OpenAI clients, ending in `/v1` (e.g. `http://127.0.0.1:8000/v1`). */
  url: string;
  port: number;
  /** Stops accepting, drops open connections, and waits for the generation in progress to end. */
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const modelNames = Array.isArray(opts.modelName) ? [...opts.modelName] : [opts.modelName];
  if (modelNames.length === 0 || modelNames.some((n) => !n)) throw new Error('startServer: modelName must be non-empty');
  const keys = opts.apiKeys && opts.apiKeys.length > 0 ? new ApiKeys(opts.apiKeys) : null;
  const app: ServeApp = {
    modelNames,
    generator: opts.generator,
    scheduler: new SerialScheduler(opts.generator),
    chatDefaults: { character: opts.character, userName: opts.userName },
    created: Math.floor(Date.now() / 1000),
  };
  const http = await listen({
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 8000,
    routes: routesOf(app),
    log: opts.log ?? (() => {}),
    guard: (req, isPublic) => {
      if (keys && !isPublic) keys.check(req.headers.authorization);
    },
  });
  return {
    url: `${http.origin}/v1`,
    port: http.port,
    close: async () => {
      await http.close();
      await app.scheduler.idle();
    },
  };
}

/** The endpoints. A 404 lists the fixed paths not hidden (token_check is FastChat's internal one). */
function routesOf(app: ServeApp): Route[] {
  return [
    { method: 'GET', path: '/health', public: true, quiet: true, handle: async (ex) => (sendJson(ex.res, 200, { status: 'ok' }), '') },
    { method: 'GET', path: '/v1/models', handle: (ex) => listModels(app, ex) },
    { method: 'GET', path: /^\/v1\/models\/(.+)$/, handle: (ex) => retrieveModel(app, ex) },
    { method: 'POST', path: '/v1/completions', handle: (ex) => completions(app, ex) },
    { method: 'POST', path: '/v1/chat/completions', handle: (ex) => chatCompletions(app, ex) },
    { method: 'POST', path: '/api/v1/token_check', hidden: true, handle: (ex) => tokenCheck(app, ex) },
  ];
}
