/**
 * llama.cpp's side of the report's decode benchmarks: node-llama-cpp 3.21.1 from test/peers (the
 * prebuilt CPU and Vulkan binaries) on a GGUF written by `wgpu-char export`, greedy, batch 1.
 *
 *   npx tsx bench/llamacpp.ts --gguf FILE --backend cpu|vulkan [--threads 1] [--prompt-tokens 64] [--new-tokens 128] [--runs 1]
 *
 * Prints one JSON line: prefill and decode tokens/s (medians of --runs after a warm-up run), the
 * llama.cpp release and the backend. Prefill = the prompt's evaluation up to its first sampled
 * token; decode = the n − 1 forwards that follow it (counted as bench/decode.ts counts ours).
 * Each call runs in a child process of its own (bench/report.ts): one llama.cpp backend per
 * process, and its threads never share a process with our Dawn device.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { benchPromptIds, type DecodeRate } from './decode.ts';
import { median } from './stats.ts';

const PEERS = path.join(import.meta.dirname, '..', 'test', 'peers');
const PEER = path.join(PEERS, 'node_modules', 'node-llama-cpp', 'dist', 'index.js');

/** Installs test/peers (node-llama-cpp and its prebuilt binaries) when it is missing. */
export function ensurePeers(log: (s: string) => void): void {
  if (existsSync(PEER)) return;
  log(`installing llama.cpp (node-llama-cpp) into ${PEERS}: npm ci --omit=optional --no-audit --no-fund`);
  execFileSync('npm', ['ci', '--omit=optional', '--no-audit', '--no-fund'], { cwd: PEERS, stdio: 'inherit' });
}

export interface LlamaCppOptions {
  gguf: string;
  backend: 'cpu' | 'vulkan';
  threads: number;
  promptTokens: number;
  newTokens: number;
  runs: number;
  /**
   * GGML_VK_VISIBLE_DEVICES for the Vulkan backend: llama.cpp skips CPU-type Vulkan devices (lavapipe)
   * unless they are named there, and would silently run on the CPU; the report passes '0' when our
   * own adapter is software (the same lavapipe). A set environment variable wins.
   */
  vulkanDevices?: string;
}

export type LlamaCppResult = DecodeRate & { release: string; backend: string; gpu_devices: string[] };

/** One child process: loads the GGUF, a warm-up run, then `runs` runs. */
export function llamaCppDecode(o: LlamaCppOptions): LlamaCppResult | { skipped: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/llamacpp.ts', '--gguf', o.gguf, '--backend', o.backend, '--threads', String(o.threads),
    '--prompt-tokens', String(o.promptTokens), '--new-tokens', String(o.newTokens), '--runs', String(o.runs)], {
    encoding: 'utf8',
    env: { ...process.env, ...(o.vulkanDevices !== undefined && process.env.GGML_VK_VISIBLE_DEVICES === undefined ? { GGML_VK_VISIBLE_DEVICES: o.vulkanDevices } : {}) },
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) return { skipped: (r.stderr || 'failed').trim().split('\n').slice(-3).join(' ') };
  return JSON.parse(line);
}

/** The part of node-llama-cpp's API used here, typed so `tsc` passes where test/peers is not installed. */
interface PeerContext {
  getSequence(): { evaluate(tokens: number[], o: { temperature: number }): AsyncGenerator<number, void, void> };
  dispose(): Promise<void>;
}
interface PeerModel {
  createContext(o: { contextSize: number; threads?: number; batchSize?: number }): Promise<PeerContext>;
  dispose(): Promise<void>;
}
interface PeerLlama {
  loadModel(o: { modelPath: string; gpuLayers?: number | 'max' }): Promise<PeerModel>;
  readonly gpu: string | false;
  readonly llamaCppRelease: { repo: string; release: string };
  getGpuDeviceNames(): Promise<string[]>;
  dispose(): Promise<void>;
}
interface Peer {
  getLlama(o: { gpu: false | 'vulkan'; build: 'never'; logLevel: string }): Promise<PeerLlama>;
  LlamaLogLevel: { error: string };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      gguf: { type: 'string' },
      backend: { type: 'string', default: 'cpu' },
      threads: { type: 'string', default: '1' },
      'prompt-tokens': { type: 'string', default: '64' },
      'new-tokens': { type: 'string', default: '128' },
      runs: { type: 'string', default: '1' },
    },
  });
  if (!values.gguf) throw new Error('--gguf FILE is required');
  const promptTokens = Number(values['prompt-tokens']);
  const newTokens = Number(values['new-tokens']);
  const threads = Number(values.threads);
  const peer = (await import(PEER)) as Peer;
  const vulkan = values.backend === 'vulkan';
  const llama = await peer.getLlama({ gpu: vulkan ? 'vulkan' : false, build: 'never', logLevel: peer.LlamaLogLevel.error });
  const devices = vulkan ? await llama.getGpuDeviceNames() : [];
  if (vulkan && devices.length === 0) throw new Error('llama.cpp\'s Vulkan backend found no device (a CPU-type device such as lavapipe needs GGML_VK_VISIBLE_DEVICES=0)');
  const model = await llama.loadModel({ modelPath: values.gguf, gpuLayers: vulkan ? 'max' : 0 });
  // V is not needed: the prompt ids are below every vocabulary we export (4000).
  const ids = benchPromptIds(4000, promptTokens);
  const once = async (): Promise<DecodeRate> => {
    const ctx = await model.createContext({ contextSize: promptTokens + newTokens + 16, threads, batchSize: promptTokens });
    const seq = ctx.getSequence();
    const t0 = performance.now();
    let t1 = 0;
    let n = 0;
    for await (const _ of seq.evaluate(ids, { temperature: 0 })) {
      if (++n === 1) t1 = performance.now();
      if (n >= newTokens) break;
    }
    const t2 = performance.now();
    await ctx.dispose();
    return { prefill_tok_s: promptTokens / ((t1 - t0) / 1000), decode_tok_s: (n - 1) / ((t2 - t1) / 1000) };
  };
  await once(); // warm-up
  const runs: DecodeRate[] = [];
  for (let r = 0; r < Number(values.runs); r++) runs.push(await once());
  const out: LlamaCppResult = {
    prefill_tok_s: median(runs.map((r) => r.prefill_tok_s)),
    decode_tok_s: median(runs.map((r) => r.decode_tok_s)),
    release: `${llama.llamaCppRelease.repo}@${llama.llamaCppRelease.release}`,
    backend: llama.gpu || 'cpu',
    gpu_devices: devices,
  };
  await model.dispose();
  await llama.dispose();
  console.log(JSON.stringify(out));
  process.exit(0);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
