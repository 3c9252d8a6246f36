/**
 * Decode throughput of a model (default: the embedded weights/tiny), ours vs PyTorch in the same run.
 *
 *   npx tsx bench/decode.ts [--model weights/tiny] [--dtype bf16|f32] [--prompt-tokens 64] [--new-tokens 128] [--runs 3]
 *
 * Ours: prefill of a fixed prompt, then greedy KV-cache decode of --new-tokens tokens (one command
 * encoder, one submit and one readback of the V probabilities per token), median of --runs.
 * Decode tokens/s counts forward passes: the first new token comes from the prefill's logits, so
 * n new tokens take n − 1 decode forwards (PyTorch's side and llama.cpp's are counted the same way).
 * PyTorch: bench/torch_llama.py (the same LLaMA in HF conventions, f32, KV cache, batch 1) with
 * Debian's /usr/bin/python3 and 2 threads; skipped with a message when torch is missing.
 * Prints the machine (adapter, CPU, BLAS) and one JSON line per side. bench/report.ts runs the
 * same two functions, interleaved with llama.cpp (bench/llamacpp.ts).
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { debianBlas } from './machine.ts';
import { median } from './stats.ts';
import { describeGpu, type Gpu } from '../src/gpu/device.ts';
import { acquireGpu } from '../src/node/dawn.ts';
import { loadLlamaModel } from '../src/formats/hf-checkpoint.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { Generator } from '../src/gen/generate.ts';

export interface DecodeRate {
  prefill_tok_s: number;
  decode_tok_s: number;
}

/** The fixed prompt of every side (bench/torch_llama.py draws the same): BOS, then (i·37) mod (V − 3) + 3. */
export function benchPromptIds(V: number, promptTokens: number): number[] {
  return [1, ...Array.from({ length: promptTokens - 1 }, (_, i) => ((i * 37) % (V - 3)) + 3)];
}

/** Our model loaded once; each run() is one greedy generation of the fixed prompt. The first run is a warm-up (pipelines). */
export async function oursDecodeSession(gpu: Gpu, modelDir: string, dtype: 'bf16' | 'f32', promptTokens: number, newTokens: number): Promise<{ run(): Promise<DecodeRate>; destroy(): void }> {
  const model = await loadLlamaModel(gpu, modelDir, dtype);
  const tok = await Tokenizer.load(`${modelDir}/tokenizer.model`);
  const gen = await Generator.create(model, tok, { onNote: () => {} });
  const prompt = tok.decode(benchPromptIds(model.dims.V, promptTokens).slice(1));
  const run = async (): Promise<DecodeRate> => {
    const res = await gen.generate(prompt, { maxNewTokens: newTokens, temperature: 0, topP: 1, seed: 1, stop: [], stopOnSpeakerTag: false });
    return { prefill_tok_s: res.promptTokens / res.prefillSeconds, decode_tok_s: (res.newTokens - 1) / res.decodeSeconds };
  };
  await run();
  return { run, destroy: () => gen.destroy() };
}

/** PyTorch's greedy decode of the same prompt (bench/torch_llama.py), or why it could not run. */
export function torchDecode(modelDir: string, promptTokens: number, newTokens: number, threads: number, device = 'auto'): (DecodeRate & Record<string, unknown>) | { skipped: string } {
  const py = spawnSync('/usr/bin/python3', ['bench/torch_llama.py', modelDir, '--prompt-tokens', String(promptTokens), '--new-tokens', String(newTokens), '--threads', String(threads), '--device', device],
    { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } });
  if (py.status !== 0) return { skipped: (py.stderr || py.error?.message || 'failed').trim().split('\n').pop()! };
  return JSON.parse(py.stdout.trim().split('\n').pop()!);
}

async function main() {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'weights/tiny' },
      dtype: { type: 'string', default: 'bf16' },
      'prompt-tokens': { type: 'string', default: '64' },
      'new-tokens': { type: 'string', default: '128' },
      runs: { type: 'string', default: '3' },
    },
  });
  const promptTokens = Number(values['prompt-tokens']);
  const newTokens = Number(values['new-tokens']);
  const gpu = await acquireGpu();
  console.log(`machine: ${describeGpu(gpu)}; CPU ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}`);
  const session = await oursDecodeSession(gpu, values.model!, values.dtype as 'bf16' | 'f32', promptTokens, newTokens);
  const runs: DecodeRate[] = [];
  for (let r = 0; r < Number(values.runs); r++) runs.push(await session.run());
  session.destroy();
  const ours = { side: 'wgpu-char', model: values.model, dtype: values.dtype, prefill_tok_s: median(runs.map((r) => r.prefill_tok_s)), decode_tok_s: median(runs.map((r) => r.decode_tok_s)) };
  console.log(JSON.stringify(ours));
  const torch = torchDecode(values.model!, promptTokens, newTokens, 2);
  if ('skipped' in torch) {
    console.log(`pytorch: skipped (${torch.skipped})`);
  } else {
    console.log(JSON.stringify({ side: 'pytorch', ...torch, blas: debianBlas() }));
    console.log(`ratio ours/pytorch: decode ${(ours.decode_tok_s / torch.decode_tok_s).toFixed(2)}, prefill ${(ours.prefill_tok_s / torch.prefill_tok_s).toFixed(2)}`);
  }
  process.exit(0);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
