/**
 * Serving throughput and latency of `wgpu-char serve` under 1, 4 and 16 concurrent streaming clients.
 *
 *   npx tsx bench/serve.ts [--model weights/tiny,bench/llama-30m-config.json] [--clients 1,4,16]
 *     [--max-tokens 64] [--rounds 1] [--out bench/results/serve-<date>.json] [--serve-arg --max-batch=16 ...] [-- <serve args>]
 *
 * --model: comma-separated (or repeated) model directories, or config.json files: a config file is
 * turned once into a random-weight checkpoint directory under bench/.cache/ (config.json,
 * model.safetensors in bf16, weights/tiny's tokenizer.model), its weights drawn on the CPU with the
 * formula src/model/synthetic.ts uses on the GPU for that config and seed 7 (computed in f64 here,
 * so a value may differ from the GPU's f32 in its last bit before the rounding to bf16).
 * --serve-arg (repeatable) and everything after `--` go to `wgpu-char serve` unchanged (e.g.
 * `--max-batch=16` once continuous batching lands); the bench works with any scheduler.
 *
 * Per model: one `wgpu-char serve --port 0` child process (bin/wgpu-char.js), waited for until GET
 * /health answers; one warm-up request (pipeline compilation); then per level of --clients, that
 * many clients each send streamed POST /v1/completions one after another, --rounds × max(clients,
 * 8) requests in all, rounded up to a multiple of clients (each of 8 fixed prompts equally often when
 * clients divides 8 or is a multiple of it; temperature 0, max_tokens
 * --max-tokens, stream_options.include_usage).
 * Per level: aggregate generated tokens/s (usage.completion_tokens summed / wall time of the
 * level), requests/s, time to first token (request sent → first chunk with text) p50/p95, and
 * inter-token latency p50/p95 as the gaps between successive text chunks (the server sends one
 * chunk per token as its text becomes final, so a gap can span a token whose text was held back).
 * A model may end a reply before max_tokens (EOS): the table's `tokens` column says how many were
 * generated in all. Prints the machine, a Markdown table, and writes the same as JSON to --out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { describeGpu } from '../src/gpu/device.ts';
import { acquireGpu } from '../src/node/dawn.ts';
import { describeMachine } from './machine.ts';
import { quantile } from './stats.ts';
import { modelDirOf } from './synthetic-checkpoint.ts';

const PROMPTS = [
  'Once upon a time',
  'The king looked at the sea and said',
  'Beethoven: I have written nine symphonies, and',
  'Man: What do you think of the weather today?\nCleopatra:',
  'In the morning the village was quiet, until',
  'Socrates: Tell me, what is justice?\nMan:',
  'The recipe calls for two eggs, a cup of flour and',
  'Hermione opened the old book and read aloud:',
];

/** `--serve-arg X` / `--serve-arg=X` (X may start with "--", which parseArgs would refuse) and everything after `--` go to serve. */
function splitServeArgs(argv: readonly string[]): { own: string[]; serve: string[] } {
  const own: string[] = [];
  const serve: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      serve.push(...argv.slice(i + 1));
      break;
    }
    if (a === '--serve-arg') {
      if (i + 1 >= argv.length) throw new Error('--serve-arg: needs a value');
      serve.push(argv[++i]!);
    } else if (a.startsWith('--serve-arg=')) serve.push(a.slice('--serve-arg='.length));
    else own.push(a);
  }
  return { own, serve };
}
const split = splitServeArgs(process.argv.slice(2));
const { values } = parseArgs({
  args: split.own,
  options: {
    model: { type: 'string', multiple: true },
    clients: { type: 'string', default: '1,4,16' },
    'max-tokens': { type: 'string', default: '64' },
    rounds: { type: 'string', default: '1' },
    out: { type: 'string' },
  },
});
const models = (values.model ?? ['weights/tiny,bench/llama-30m-config.json']).flatMap((m) => m.split(',')).filter((m) => m !== '');
const levels = values.clients.split(',').map(Number);
const maxTokens = Number(values['max-tokens']);
const rounds = Number(values.rounds);
const serveArgs = split.serve;
if (levels.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`--clients: positive integers, comma-separated (got ${values.clients})`);
if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Error(`--max-tokens: a positive integer (got ${values['max-tokens']})`);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: a positive integer (got ${values.rounds})`);
const outPath = values.out ?? `bench/results/serve-${new Date().toISOString().slice(0, 10)}.json`;


interface Served {
  child: ChildProcess;
  base: string;
  servingLine: string;
  stderr: () => string;
}

/** Starts `serve --port 0`, reads its URL from the "serving ... at URL" line, then polls GET /health. */
async function startServe(dir: string): Promise<Served> {
  const args = ['bin/wgpu-char.js', 'serve', '--model', dir, '--port', '0', '--quiet', ...serveArgs];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const base = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /serving .* at (http:\/\/\S+):(\d+)\/v1/.exec(stderr);
      if (m) resolve(`http://127.0.0.1:${m[2]}`);
    });
    child.on('exit', (code, signal) => reject(new Error(`serve exited (${code ?? signal}) before listening:\n${stderr}`)));
  });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/health`)).ok) break;
    } catch { /* not yet */ }
    if (i > 100) throw new Error(`${base}/health: no answer`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const servingLine = /wgpu-char: (serving [^\n]*)/.exec(stderr)![1];
  return { child, base, servingLine, stderr: () => stderr };
}

interface RequestTiming {
  ttftMs: number;
  /** Gaps between successive chunks with text, ms. */
  gapsMs: number[];
  completionTokens: number;
}

/** One streamed completion; times from the moment it is sent. */
async function streamOne(base: string, model: string, prompt: string): Promise<RequestTiming> {
  const t0 = performance.now();
  const r = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0, seed: 1, stream: true, stream_options: { include_usage: true } }),
  });
  if (r.status !== 200) throw new Error(`POST /v1/completions: ${r.status} ${await r.text()}`);
  const reader = r.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const textTimes: number[] = [];
  let completionTokens: number | undefined;
  let done = false;
  while (!done) {
    const { done: end, value } = await reader.read();
    if (end) break;
    const now = performance.now();
    buf += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      if (!event.startsWith('data: ')) continue;
      const data = event.slice(6);
      if (data === '[DONE]') {
        done = true;
        break;
      }
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(`stream error: ${JSON.stringify(chunk.error)}`);
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
      if (chunk.choices?.[0]?.finish_reason === 'abort') throw new Error('stream cut by the server (finish_reason "abort")');
      if (chunk.choices?.[0]?.text) textTimes.push(now - t0);
    }
  }
  if (completionTokens === undefined) throw new Error('stream ended without a usage chunk');
  return {
    ttftMs: textTimes[0] ?? NaN,
    gapsMs: textTimes.slice(1).map((t, i) => t - textTimes[i]),
    completionTokens,
  };
}

interface LevelResult {
  clients: number;
  requests: number;
  seconds: number;
  completion_tokens: number;
  tokens_per_s: number;
  requests_per_s: number;
  ttft_ms_p50: number;
  ttft_ms_p95: number;
  itl_ms_p50: number;
  itl_ms_p95: number;
}

async function runLevel(base: string, model: string, clients: number): Promise<LevelResult> {
  const timings: RequestTiming[] = [];
  const t0 = performance.now();
  // Request j = c + i·clients of the level asks PROMPTS[j % P]: every level asks each prompt equally
  // often (a model that stops early on some prompts would otherwise make levels incomparable).
  const perClient = rounds * Math.ceil(Math.max(clients, PROMPTS.length) / clients);
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let i = 0; i < perClient; i++) timings.push(await streamOne(base, model, PROMPTS[(c + i * clients) % PROMPTS.length]));
  }));
  const seconds = (performance.now() - t0) / 1000;
  const tokens = timings.reduce((a, t) => a + t.completionTokens, 0);
  const ttft = timings.map((t) => t.ttftMs).filter(Number.isFinite);
  const gaps = timings.flatMap((t) => t.gapsMs);
  return {
    clients, requests: timings.length, seconds, completion_tokens: tokens,
    tokens_per_s: tokens / seconds, requests_per_s: timings.length / seconds,
    ttft_ms_p50: quantile(ttft, 0.5), ttft_ms_p95: quantile(ttft, 0.95),
    itl_ms_p50: quantile(gaps, 0.5), itl_ms_p95: quantile(gaps, 0.95),
  };
}

const f = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '–');

async function main() {
  const gpu = await acquireGpu();
  const machine = `${describeGpu(gpu)}; ${describeMachine()}`;
  console.log(`machine: ${machine}`);
  console.log(`serve args: ${serveArgs.length > 0 ? serveArgs.join(' ') : '(none)'}; max_tokens ${maxTokens}; ${rounds} × max(clients, ${PROMPTS.length}) requests per level\n`);
  const results = [];
  for (const spec of models) {
    const { dir, label } = await modelDirOf(spec);
    const served = await startServe(dir);
    try {
      const served_model = ((await (await fetch(`${served.base}/v1/models`)).json()) as { data: { id: string }[] }).data[0].id;
      await streamOne(served.base, served_model, PROMPTS[0]); // warm-up: pipeline compilation
      const rows: LevelResult[] = [];
      for (const clients of levels) {
        const row = await runLevel(served.base, served_model, clients);
        rows.push(row);
        console.error(`  ${label}: ${clients} client(s): ${f(row.tokens_per_s)} tok/s`);
      }
      results.push({ model: label, dir, serving: served.servingLine, levels: rows });
      console.log(`### ${label}\n${served.servingLine}\n`);
      console.log('| clients | requests | tokens | tokens/s | requests/s | TTFT p50 (ms) | TTFT p95 (ms) | ITL p50 (ms) | ITL p95 (ms) |');
      console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const r of rows) {
        console.log(`| ${r.clients} | ${r.requests} | ${r.completion_tokens} | ${f(r.tokens_per_s)} | ${f(r.requests_per_s, 2)} | ${f(r.ttft_ms_p50, 0)} | ${f(r.ttft_ms_p95, 0)} | ${f(r.itl_ms_p50)} | ${f(r.itl_ms_p95)} |`);
      }
      console.log('');
    } catch (e) {
      throw new Error(`${label}: ${(e as Error).message}\nserve's stderr:\n${served.stderr().slice(-2000)}`);
    } finally {
      served.child.kill('SIGKILL');
    }
  }
  const report = { date: new Date().toISOString(), machine, serve_args: serveArgs, max_tokens: maxTokens, rounds, prompts: PROMPTS, results };
  mkdirSync(path.dirname(outPath), { recursive: true });
  writeFileSync(outPath, JSON.stringify(report, null, 2) + '\n');
  console.log(`wrote ${outPath}`);
  process.exit(0);
}

await main();
