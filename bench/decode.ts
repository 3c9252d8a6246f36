/**
 * Decode throughput of a model (default: the embedded weights/tiny), ours vs PyTorch in the same run.
 *
 *   npx tsx bench/decode.ts [--model weights/tiny] [--dtype bf16|f32] [--prompt-tokens 64] [--new-tokens 128] [--runs 3]
 *
 * Ours: prefill of a fixed prompt, then greedy KV-cache decode of --new-tokens tokens (one command
 * encoder, one submit and one readback of the V probabilities per token), median of --runs.
 * PyTorch: bench/torch_llama.py (the same LLaMA in HF conventions, f32, KV cache, batch 1) with
 * Debian's /usr/bin/python3 and 2 threads; skipped with a message when torch is missing.
 * Prints the machine (adapter, CPU, BLAS) and one JSON line per side.
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { debianBlas } from './machine.ts';
import { parseArgs } from 'node:util';
import { describeGpu } from '../src/gpu/device.ts';
import { acquireGpu } from '../src/node/dawn.ts';
import { loadLlamaModel } from '../src/formats/hf-checkpoint.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { Generator } from '../src/gen/generate.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

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
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`machine: ${describeGpu(gpu)}; CPU ${cpu} × ${cpus().length}`);
  const model = await loadLlamaModel(gpu, values.model!, values.dtype as 'bf16' | 'f32');
  const tok = await Tokenizer.load(`${values.model}/tokenizer.model`);
  const gen = await Generator.create(model, tok, {});
  // The same fixed prompt ids as bench/torch_llama.py: BOS then a deterministic sequence.
  const V = model.dims.V;
  const ids = [1, ...Array.from({ length: promptTokens - 1 }, (_, i) => ((i * 37) % (V - 3)) + 3)];
  const prompt = tok.decode(ids.slice(1));
  const prefill: number[] = [];
  const decode: number[] = [];
  for (let r = 0; r < Number(values.runs) + 1; r++) {
    const res = await gen.generate(prompt, { maxNewTokens: newTokens, temperature: 0, topP: 1, seed: 1, stop: [], stopOnSpeakerTag: false });
    if (r === 0) continue; // warm-up: pipeline compilation
    prefill.push(res.promptTokens / res.prefillSeconds);
    decode.push(res.newTokens / res.decodeSeconds);
  }
  const ours = { side: 'wgpu-char', model: values.model, dtype: values.dtype, prefill_tok_s: median(prefill), decode_tok_s: median(decode) };
  console.log(JSON.stringify(ours));

  const py = spawnSync('/usr/bin/python3', ['bench/torch_llama.py', values.model!, '--prompt-tokens', String(promptTokens), '--new-tokens', String(newTokens), '--threads', '2'], { encoding: 'utf8' });
  if (py.status !== 0) {
    console.log(`pytorch: skipped (${(py.stderr || py.error?.message || 'failed').trim().split('\n').pop()})`);
  } else {
    const torch = JSON.parse(py.stdout.trim().split('\n').pop()!);
    console.log(JSON.stringify({ side: 'pytorch', ...torch, blas: debianBlas() }));
    console.log(`ratio ours/pytorch: decode ${(ours.decode_tok_s / torch.decode_tok_s).toFixed(2)}, prefill ${(ours.prefill_tok_s / torch.prefill_tok_s).toFixed(2)}`);
  }
  gen.destroy();
  process.exit(0);
}

await main();
