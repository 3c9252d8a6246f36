/**
 * A scripted OpenAI-compatible server on 127.0.0.1 for the evaluation's tests and for trying
 * `wgpu-char score` offline: POST /v1/chat/completions answers as a judge (a line of reasoning,
 * then a score 1-7 on its own line and repeated, chosen by a hash of the prompt so the same prompt
 * always gets the same score), POST /v1/completions as a character (a fixed speaking reply).
 * Tests pass their own `judge`/`character` functions and faults.
 *
 *   npx tsx src/eval/scripted-server.ts --port 8766
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

export type ScriptedRequest = { index: number; endpoint: 'chat' | 'completions'; prompt: string; body: Record<string, unknown> };
/** A reply text, an HTTP status with an error body (429 comes with Retry-After: 0), or a reply cut at the token limit. */
export type ScriptedReply = string | { status: number } | { text: string; finishReason: string };

export type ScriptedServerOptions = {
  judge?: (req: ScriptedRequest) => ScriptedReply;
  character?: (req: ScriptedRequest) => ScriptedReply;
  port?: number;
  /** Milliseconds every request waits before its answer (a slow server, so that a test can kill a client mid-run). */
  delayMs?: number;
};

export type ScriptedServer = { url: string; requests: ScriptedRequest[]; close(): Promise<void> };

/** 1-7 from a hash of the text. */
export function hashScore(text: string): number {
  return 1 + (createHash('sha256').update(text).digest().readUInt32BE(0) % 7);
}

export function defaultJudge(req: ScriptedRequest): string {
  const score = hashScore(req.prompt);
  return `1. The responses were read against the profile.\n2. Step 3 of 4 considered the details.\n\nScore:\n${score}\n\n${score}`;
}

export function defaultCharacter(): string {
  return 'speaking): I am glad you asked. Let me tell you about it.';
}

export async function startScriptedServer(opts: ScriptedServerOptions = {}): Promise<ScriptedServer> {
  const requests: ScriptedRequest[] = [];
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const path = (req.url ?? '').replace(/\?.*$/, '');
    const endpoint = /\/chat\/completions$/.test(path) ? 'chat' : /\/completions$/.test(path) ? 'completions' : undefined;
    if (req.method !== 'POST' || endpoint === undefined) return send(res, 404, { error: { message: `no route ${req.method} ${path}` } });
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    const prompt = endpoint === 'chat' ? ((body.messages as { role: string; content: string }[]).filter((m) => m.role === 'user').at(-1)?.content ?? '') : String(body.prompt);
    const request: ScriptedRequest = { index: requests.length, endpoint, prompt, body };
    requests.push(request);
    const reply = endpoint === 'chat' ? (opts.judge ?? defaultJudge)(request) : (opts.character ?? defaultCharacter)(request);
    if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    if (typeof reply === 'object' && 'status' in reply) {
      return send(res, reply.status, { error: { message: `scripted ${reply.status}` } }, reply.status === 429 ? { 'retry-after': '0' } : {});
    }
    const text = typeof reply === 'string' ? reply : reply.text;
    const finish = typeof reply === 'string' ? 'stop' : reply.finishReason;
    const usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 };
    const model = String(body.model ?? 'scripted');
    if (endpoint === 'chat') {
      return send(res, 200, { id: `chatcmpl-${request.index}`, object: 'chat.completion', created: 0, model, choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: finish }], usage });
    }
    return send(res, 200, { id: `cmpl-${request.index}`, object: 'text_completion', created: 0, model, choices: [{ index: 0, text, logprobs: null, finish_reason: finish }], usage });
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((e) => send(res, 500, { error: { message: String(e) } }));
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--port');
  const server = await startScriptedServer({ port: i > 0 ? Number(process.argv[i + 1]) : 8766 });
  process.stdout.write(`scripted judge (chat) and character (completions) on ${server.url}; Ctrl-C to stop\n`);
}
