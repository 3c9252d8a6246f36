import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import type { Turn } from '../prompted.ts';

/**
 * A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for the pipeline's tests and
 * for trying `wgpu-char data build` offline. Replies are built from real interview transcripts of
 * a trained Character-LLM, re-serialised into the block formats the prompts ask for, and chosen by
 * a hash of the prompt, so the same prompt always gets the same reply (which is what lets a test
 * compare a faulty run with a fault-free one). Faults can be injected per request.
 *
 *   npx tsx src/data/pipeline/mock-server.ts --transcripts test/fixtures/data-pipeline/interviews_Beethoven_sft.jsonl --port 8765
 */

export type Transcript = { character: string; topic: string; qid: number; turns: Turn[] };

export type FaultKind =
  /** 429 with a Retry-After header. */
  | 'rate-limit'
  /** 500 with an error body. */
  | 'server-error'
  /** The socket is destroyed without a response. */
  | 'drop'
  /** The reply comes after `slowMs` (set it past the client's timeout). */
  | 'slow'
  /** 200 with empty message content. */
  | 'empty'
  /** 200 with the normal reply wrapped in a preamble, a broken block, narration and an epilogue. */
  | 'malformed'
  /** 401, as for a wrong API key (fatal for a run; not in FAULT_KINDS). */
  | 'unauthorized';
export const FAULT_KINDS: readonly FaultKind[] = ['rate-limit', 'server-error', 'drop', 'slow', 'empty', 'malformed'];

export type MockRequest = {
  /** 0-based order of arrival. */
  index: number;
  prompt: string;
  /** How many earlier requests carried the same prompt. */
  seen: number;
  stage: PromptKind;
};

export type MockServerOptions = {
  transcripts: Transcript[];
  fault?: (request: MockRequest) => FaultKind | undefined;
  slowMs?: number;
  retryAfterSeconds?: number;
  /** Called on arrival, before any reply (the kill-and-resume test kills its child from here). */
  onRequest?: (request: MockRequest) => void;
  port?: number;
};

export type MockServer = {
  /** Base URL for the client, ending in /v1. */
  url: string;
  /** Every request received, with its arrival time (ms since epoch) and the fault it got. */
  requests: (MockRequest & { at: number; fault?: FaultKind })[];
  close(): Promise<void>;
};

export type PromptKind = 'scenes' | 'dialogues' | 'protective';

/**
 * Tells the three prompt kinds apart by their output markers, which our templates share with the
 * original ones: the dialogue prompt lists the setting as "- Type:"/"- Location:" lines, the scene
 * prompt shows a "Scene 2:" example, the protective prompt has neither.
 */
export function promptKind(prompt: string): PromptKind {
  if (/^- Location: /m.test(prompt)) return 'dialogues';
  if (/^Scene 2:/m.test(prompt)) return 'scenes';
  return 'protective';
}

function hashOf(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0);
}

const LOCATIONS = ["Beethoven's study in Vienna", 'A salon in Bonn', 'The Theater an der Wien', 'A tavern near the Kärntnertor', 'A garden in Heiligenstadt', "Prince Lichnowsky's music room"];
const TYPES = ['Chat', 'Discussion', 'Debate', 'Speech'];

/** Splits long content into 1-3 paragraphs at sentence ends, to produce the 3- and 4+-line blocks the prompt invites. */
function toParagraphs(content: string, seed: number): string[] {
  const sentences = content.match(/[^.!?]+[.!?]+["'”’]?\s*|[^.!?]+$/g)?.map((s) => s.trim()).filter(Boolean) ?? [content];
  const wanted = sentences.length >= 6 ? 1 + (seed % 3) : sentences.length >= 3 ? 1 + (seed % 2) : 1;
  const per = Math.ceil(sentences.length / wanted);
  const paragraphs: string[] = [];
  for (let i = 0; i < sentences.length; i += per) paragraphs.push(sentences.slice(i, i + per).join(' '));
  return paragraphs;
}

function pick<T>(list: readonly T[], n: number): T {
  return list[n % list.length]!;
}

function sceneReply(prompt: string, transcripts: Transcript[]): string {
  const h = hashOf(prompt);
  const blocks: string[] = [];
  for (let k = 0; k < 3; k++) {
    const t = pick(transcripts, h + k);
    const question = t.topic.replace(/\s+/g, ' ').trim();
    blocks.push(`Scene ${k + 1}:\nType: ${pick(TYPES, h + 7 * k)}\nLocation: ${pick(LOCATIONS, (h >>> 3) + k)}\nBackground: A visitor asks ${t.turns.find((x) => x.role !== 'Man')?.role ?? 'him'} a question that has long occupied him: "${question}"`);
  }
  return blocks.join('\n\n');
}

function turnsReply(background: string, turns: Turn[], seed: number, rename: Record<string, string>): string {
  const blocks = [`Background:\n${background}`];
  turns.forEach((turn, i) => {
    const role = rename[turn.role] ?? turn.role;
    const paragraphs = turn.content.split('\n').flatMap((p, j) => toParagraphs(p, seed + i + j));
    blocks.push(`${role} ${turn.action}\n${paragraphs.join('\n')}`);
  });
  return blocks.join('\n\n');
}

function dialogueReply(prompt: string, transcripts: Transcript[]): string {
  const h = hashOf(prompt);
  const t = pick(transcripts, h);
  const location = /^- Location: (.*)$/m.exec(prompt)?.[1] ?? 'a quiet room';
  const visitor = pick(['Neefe', 'Ries', 'Schindler', 'Czerny'], h >>> 5);
  return turnsReply(`${location}, late afternoon. ${visitor} has come to see the composer, and the two sit facing each other.`, t.turns, h, { Man: visitor });
}

function protectiveReply(prompt: string, transcripts: Transcript[]): string {
  const h = hashOf(prompt);
  const t = pick(transcripts, h);
  const visitor = pick(['Lily', 'Miles'], h >>> 7);
  return turnsReply(`${visitor} meets the composer in a small room and starts asking him about his life.`, t.turns.slice(0, 6), h, { Man: visitor });
}

export function mockReply(prompt: string, transcripts: Transcript[]): string {
  if (transcripts.length === 0) throw new Error('mock server: no transcripts');
  const kind = promptKind(prompt);
  if (kind === 'scenes') return sceneReply(prompt, transcripts);
  if (kind === 'dialogues') return dialogueReply(prompt, transcripts);
  return protectiveReply(prompt, transcripts);
}

/** The `malformed` fault: the good reply plus text a parser must reject without losing the rest. */
export function malformedReply(prompt: string, good: string): string {
  if (promptKind(prompt) === 'scenes') {
    return `Sure! Here are the scenes you asked for:\n\n${good}\n\nScene 4:\nType: Chat\nLocation: Somewhere in Vienna\n\nI hope these scenes help with your project!`;
  }
  const [background, ...turns] = good.split('\n\n');
  const middle = Math.max(1, Math.floor(turns.length / 2));
  return [
    'Certainly! Here is the script:',
    background,
    'Title: An Afternoon Visit',
    ...turns.slice(0, middle),
    '(A long silence fills the room.)',
    ...turns.slice(middle),
    'THE END',
    'The visitor leaves, and the composer returns to his piano.',
  ].join('\n\n');
}

export function readTranscripts(path: string): Transcript[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Transcript);
}

function words(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

export async function startMockServer(opts: MockServerOptions): Promise<MockServer> {
  const requests: MockServer['requests'] = [];
  const seenByPrompt = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  const completion = (model: string, prompt: string, content: string) => ({
    id: `chatcmpl-mock-${requests.length}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: words(prompt), completion_tokens: words(content), total_tokens: words(prompt) + words(content) },
  });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = (req.url ?? '').replace(/\?.*$/, '');
    if (req.method === 'GET' && /\/models$/.test(path)) return send(res, 200, { object: 'list', data: [{ id: 'mock', object: 'model', owned_by: 'wgpu-char' }] });
    if (req.method !== 'POST' || !/\/chat\/completions$/.test(path)) return send(res, 404, { error: { message: `no route ${req.method} ${path}` } });
    let body: { model?: string; messages?: { role: string; content: string }[] };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return send(res, 400, { error: { message: 'invalid JSON body' } });
    }
    const prompt = body.messages?.filter((m) => m.role === 'user').at(-1)?.content ?? '';
    const seen = seenByPrompt.get(prompt) ?? 0;
    seenByPrompt.set(prompt, seen + 1);
    const request: MockRequest = { index: requests.length, prompt, seen, stage: promptKind(prompt) };
    const fault = opts.fault?.(request);
    requests.push({ ...request, at: Date.now(), fault });
    opts.onRequest?.(request);
    const model = body.model ?? 'mock';
    const good = mockReply(prompt, opts.transcripts);
    switch (fault) {
      case 'rate-limit':
        return send(res, 429, { error: { message: 'Rate limit reached for requests', type: 'requests', code: 'rate_limit_exceeded' } }, { 'retry-after': String(opts.retryAfterSeconds ?? 1) });
      case 'server-error':
        return send(res, 500, { error: { message: 'The server had an error while processing your request.', type: 'server_error' } });
      case 'drop':
        req.socket.destroy();
        return;
      case 'slow': {
        const timer = setTimeout(() => {
          timers.delete(timer);
          send(res, 200, completion(model, prompt, good));
        }, opts.slowMs ?? 2000);
        timers.add(timer);
        return;
      }
      case 'unauthorized':
        return send(res, 401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' } });
      case 'empty':
        return send(res, 200, completion(model, prompt, ''));
      case 'malformed':
        return send(res, 200, completion(model, prompt, malformedReply(prompt, good)));
      default:
        return send(res, 200, completion(model, prompt, good));
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => send(res, 500, { error: { message: String(error) } }));
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// Run directly: serve the transcripts until Ctrl-C (no faults).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const transcriptsPath = arg('--transcripts') ?? 'test/fixtures/data-pipeline/interviews_Beethoven_sft.jsonl';
  const server = await startMockServer({ transcripts: readTranscripts(transcriptsPath), port: Number(arg('--port') ?? 8765) });
  process.stdout.write(`mock OpenAI-compatible server on ${server.url} (replies from ${transcriptsPath}); Ctrl-C to stop\n`);
}
