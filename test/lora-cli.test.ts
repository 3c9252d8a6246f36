/**
 * LoRA from the command line: `wgpu-char train --lora-rank` writes a PEFT adapter (and with
 * --merge a full merged checkpoint), resumes bit-exactly with dropout on, and `--adapter` applies
 * it in the other commands; the unmerged adapter and the merged weights score the same text alike.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tokenizeSample } from '../src/data/sft.ts';
import { loadModelDir } from '../src/formats/model-dir.ts';
import { readPeftAdapter } from '../src/formats/peft.ts';
import { loadLlamaConfig } from '../src/formats/hf-checkpoint.ts';
import { readPromptedFile } from '../src/formats/prompted-file.ts';
import { SequenceScorer } from '../src/model/evaluate.ts';
import { gpu } from './util/gpu.ts';

const root = path.join(import.meta.dirname, '..');
const cli = (args: string[]) => spawnSync(process.execPath, ['bin/wgpu-char.js', ...args], { cwd: root, encoding: 'utf8', timeout: 300_000 });

describe('train --lora-rank: argument errors are one line', () => {
  it('a --lora-* option without --lora-rank or --adapter, and an unknown target module', () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'lora-cli-'));
    const r = cli(['train', '--data', 'examples/prompted_Beethoven.jsonl', '--out', path.join(tmp, 'a'), '--lora-alpha', '16']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n').pop()).toBe('wgpu-char: --lora-alpha needs --lora-rank or --adapter');
    const bad = cli(['train', '--data', 'examples/prompted_Beethoven.jsonl', '--out', path.join(tmp, 'b'), '--lora-rank', '2', '--lora-targets', 'q_proj,lm_head']);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n').pop()).toBe('wgpu-char: --lora-targets: "lm_head" is not one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj');
  });
});

describe.skipIf(!gpu)('train --lora-rank end to end (weights/tiny)', () => {
  let tmp: string;
  let data: string;
  let run: string;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'lora-cli-'));
    data = path.join(tmp, 'six.jsonl');
    writeFileSync(data, readFileSync(path.join(root, 'examples', 'prompted_Beethoven.jsonl'), 'utf8').split('\n').slice(0, 6).join('\n') + '\n');
    run = path.join(tmp, 'run');
    // A large alpha and lr so that 4 steps move the model visibly; dropout on, to check its resume.
    const r = cli(['train', '--data', data, '--out', run, '--lora-rank', '4', '--lora-alpha', '64', '--lora-dropout', '0.1', '--lr', '1e-2',
      '--max-steps', '4', '--save-steps', '2', '--eval-ratio', '0', '--batch-size', '2', '--grad-accum', '1', '--max-len', '256', '--dtype', 'f32', '--merge']);
    expect(r.status, r.stderr).toBe(0);
  }, 300_000);

  it('writes PEFT\'s adapter files, a merged checkpoint, and adapter checkpoints', () => {
    const a = readPeftAdapter(run, loadLlamaConfig(path.join(root, 'weights', 'tiny')));
    expect(a.config).toEqual({ r: 4, alpha: 64, dropout: 0.1, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] });
    expect(a.tensors.size).toBe(4 * 7 * 2);
    expect(a.baseModel).toBe('weights/tiny');
    readPeftAdapter(path.join(run, 'checkpoint-2'), loadLlamaConfig(path.join(root, 'weights', 'tiny')));
    expect(loadLlamaConfig(path.join(run, 'merged')).num_hidden_layers).toBe(4);
  });

  it('resuming a copied checkpoint-2 ends with the same adapter, bit for bit (dropout masks included)', () => {
    const copy = path.join(tmp, 'copy');
    cpSync(run, copy, { recursive: true });
    for (const f of ['adapter_model.safetensors', 'adapter_config.json', 'merged', 'checkpoint-4']) rmSync(path.join(copy, f), { recursive: true, force: true });
    const r = cli(['train', '--resume', path.join(copy, 'checkpoint-2')]);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(path.join(copy, 'adapter_model.safetensors')).equals(readFileSync(path.join(run, 'adapter_model.safetensors')))).toBe(true);
  }, 300_000);

  it('--adapter: base + adapter scores text as the merged checkpoint does, and unlike the base', async () => {
    const nll = async (dir: string, adapter?: string) => {
      const { model, tokenizer } = await loadModelDir(dir, 'f32', { quiet: true, adapter });
      const samples = readPromptedFile(data).map((s) => tokenizeSample(tokenizer, s, 256)!);
      const scorer = await SequenceScorer.create(model, 256, 1);
      let total = 0;
      for (const s of samples) total += await scorer.sumNll(s);
      model.destroy();
      return total;
    };
    const base = await nll(path.join(root, 'weights', 'tiny'));
    const withAdapter = await nll(path.join(root, 'weights', 'tiny'), run);
    const merged = await nll(path.join(run, 'merged'));
    console.log(`lora cli: summed NLL base ${base}, base + adapter ${withAdapter}, merged ${merged}`);
    expect(Math.abs(withAdapter - merged) / merged).toBeLessThan(1e-5);
    expect(Math.abs(withAdapter - base) / base).toBeGreaterThan(1e-3);
  }, 120_000);
});
