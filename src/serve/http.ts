/**
 * The HTTP side of `wgpu-char serve`, on node:http alone: listening and closing, a table of routes
 * (unknown path: 404, wrong method: 405), request bodies read as one JSON object of at most 8 MiB
 * (else 413), JSON answers, the error answer of a failed request, and one log line per request
 * (method, path, status, the route's note, seconds). A `guard` may refuse a request before it is
 * routed (server.ts: 503 while draining, 401 without an API key); the server counts the requests
 * whose answer is not finished yet, so that a drain can wait for them. Knows nothing of models or
 * of the OpenAI API.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError, asApiError, ErrorCode, errorBody } from './errors.ts';
import { Client, ClientGone } from './client.ts';
import { endStreamWithError } from './sse.ts';

export type Json = Record<string, unknown>;

const MAX_BODY_BYTES = 8 << 20;

/** One request and its response, as a route handler sees them. */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  client: Client;
  /** The groups a pattern route's path matched, in order (none for a fixed path). */
  params: string[];
}

export interface Route {
  method: 'GET' | 'POST';
  /** A fixed path without a trailing slash, or a pattern over such paths. */
  path: string | RegExp;
  /** Left out of the endpoint list a 404 answer gives (routes with a pattern always are). */
  hidden?: boolean;
  /** Open without an API key (the health check). */
  public?: boolean;
  /** No log line for a successful answer (a health check polled every few seconds would flood the log). */
  quiet?: boolean;
  /** Answers the exchange (or throws); resolves to a note for the log line, '' for none. */
  handle(ex: Exchange): Promise<string>;
}

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  routes: readonly Route[];
  log: (line: string) => void;
  /**
   * Called for every request before it is routed, with whether its path is a public route; throws
   * (an ApiError) to refuse it. Runs before the 404/405 checks, so that without a key an unknown
   * path is a 401 too and the endpoint list stays private.
   */
  guard?: (req: IncomingMessage, isPublic: boolean) => void;
}

export interface HttpServer {
  /** `http://host:port`, with an IPv6 host in brackets. */
  origin: string;
  port: number;
  /** Stops accepting, drops open connections, and resolves once the server is closed. */
  close(): Promise<void>;
  /** Requests received whose response has not ended yet (closed connections included as ended). */
  activeRequests(): number;
  /** Resolves when `activeRequests()` is 0. */
  idle(): Promise<void>;
}

export async function listen(opts: HttpServerOptions): Promise<HttpServer> {
  let active = 0;
  let waiters: (() => void)[] = [];
  const server = createServer((req, res) => {
    // A response's 'close' comes once it has ended or its connection is gone, whatever the handler does.
    active++;
    res.once('close', () => {
      active--;
      if (active === 0) {
        for (const wake of waiters) wake();
        waiters = [];
      }
    });
    answer(req, res, opts);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    origin: `http://${urlHost}:${port}`,
    port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
    activeRequests: () => active,
    idle: () => (active === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
  };
}

/** Routes one request, answers its failure if it fails, and logs it. */
function answer(req: IncomingMessage, res: ServerResponse, opts: HttpServerOptions): void {
  const t0 = performance.now();
  const logLine = (status: number | string, note = '') => opts.log(`${req.method} ${req.url} ${status}${note ? ' ' + note : ''} ${((performance.now() - t0) / 1000).toFixed(2)}s`);
  const client = new Client(res);
  let quiet = false;
  dispatch(req, res, client, opts, (route) => (quiet = route.quiet === true)).then(
    (note) => {
      if (!(quiet && res.statusCode < 400)) logLine(res.statusCode, note);
    },
    (e: unknown) => {
      if (e instanceof ClientGone) return logLine('client gone');
      const err = asApiError(e);
      if (!(e instanceof ApiError)) opts.log(`${req.method} ${req.url}: ${(e as Error)?.stack ?? String(e)}`);
      // Only an event stream is written in parts, so a response already started is one.
      if (res.headersSent) endStreamWithError(res, errorBody(err));
      else sendJson(res, err.status, errorBody(err), err.extras.headers);
      logLine(err.status, err.message);
    },
  );
}

async function dispatch(req: IncomingMessage, res: ServerResponse, client: Client, opts: HttpServerOptions, onRoute: (route: Route) => void): Promise<string> {
  const { routes } = opts;
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const method = req.method ?? 'GET';
  const onPath = routes.flatMap((route) => {
    const params = matchPath(route.path, path);
    return params ? [{ route, params }] : [];
  });
  opts.guard?.(req, onPath.some((m) => m.route.public === true));
  if (onPath.length === 0) {
    const listed = routes.filter((r) => typeof r.path === 'string' && !r.hidden).map((r) => `${r.method} ${r.path}`);
    throw new ApiError(404, `not found: ${method} ${url.pathname} (endpoints: ${listed.join(', ')})`, 404);
  }
  const hit = onPath.find((m) => m.route.method === method);
  if (!hit) {
    const allowed = onPath.map((m) => m.route.method).join(', ');
    res.setHeader('Allow', allowed);
    throw new ApiError(405, `method ${method} not allowed on ${path} (use ${allowed})`, 405);
  }
  onRoute(hit.route);
  return hit.route.handle({ req, res, client, params: hit.params });
}

/** The captured groups if `path` is on the route, else null. */
function matchPath(routePath: string | RegExp, path: string): string[] | null {
  if (typeof routePath === 'string') return routePath === path ? [] : null;
  const m = routePath.exec(path);
  return m ? m.slice(1) : null;
}

/** The request body as a JSON object; 413 over MAX_BODY_BYTES, 400 (40001) if not a JSON object. */
export async function readJsonObject(req: IncomingMessage): Promise<Json> {
  const text = await readBody(req);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new ApiError(ErrorCode.VALIDATION_TYPE_ERROR, `the request body is not valid JSON: ${(e as Error).message}`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(ErrorCode.VALIDATION_TYPE_ERROR, 'the request body must be a JSON object');
  return body as Json;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        // Answer now and discard the rest of the upload (destroying the socket would lose the answer).
        req.removeAllListeners('data');
        req.resume();
        reject(new ApiError(ErrorCode.PARAM_OUT_OF_RANGE, `request body over ${MAX_BODY_BYTES} bytes`, 413));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Answers `body` as JSON (with `headers` besides the content's), unless an answer has already started. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Answers `text` with `contentType`. */
export function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
