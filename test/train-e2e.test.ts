/**
 * `wgpu-char train` for real (the GPU engine on lavapipe) on a slice of the example file:
 * the eval loss goes down, and `wgpu-char eval` on the saved model and the held-out set the
 * trainer wrote reproduces the last eval loss it logged.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TOL } from './tolerances.ts';
import { parseLlamaConfig } from '../src/model/config.ts';
import { saveLlamaCheckpointCpu } from '../src/formats/hf-checkpoint.ts';
import { randomLlamaWeights, TINY_CONFIG } from '../scripts/make-tiny-model.ts';
import { gpu } from './util/gpu.ts';

function cli(args: string[]) {
  return spawnSync(process.execPath, ['bin/wgpu-char.js', ...args], { encoding: 'utf8', timeout: 240_000 });
}

describe.skipIf(!gpu)('train end to end', () => {
  it('lowers the eval loss, and `eval` on the checkpoint agrees with the logged eval loss', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'train-e2e-'));
    const data = path.join(dir, 'data.jsonl');
    // 24 short samples: 20 train, 4 eval (eval ratio 0.15, seeded).
    const lines = readFileSync('examples/prompted_Beethoven.jsonl', 'utf8').trim().split('\n').slice(0, 24);
    writeFileSync(data, lines.join('\n') + '\n');
    // A freshly initialised model of the embedded architecture (the embedded one is already trained on this data).
    const init = path.join(dir, 'init');
    const cfg = parseLlamaConfig(TINY_CONFIG, 'TINY_CONFIG');
    await saveLlamaCheckpointCpu(init, cfg, randomLlamaWeights(cfg, 99), 'f32');
    copyFileSync('weights/tiny/tokenizer.model', path.join(init, 'tokenizer.model'));
    const out = path.join(dir, 'out');
    const r = cli(['train', '--data', data, '--model', init, '--out', out, '--dtype', 'f32', '--max-len', '160', '--epochs', '2',
      '--batch-size', '4', '--grad-accum', '1', '--lr', '3e-3', '--warmup-ratio', '0', '--eval-ratio', '0.15', '--seed', '3']);
    expect(r.status, r.stderr).toBe(0);
    const log = readFileSync(path.join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const evals = log.filter((e) => e.eval_loss !== undefined);
    expect(evals.length).toBe(2); // one per epoch
    const first = log.find((e) => e.loss !== undefined)!.loss;
    const lastEval = evals[evals.length - 1].eval_loss;
    const before = cli(['eval', '--model', init, '--data', path.join(out, 'eval_data.jsonl'), '--max-len', '160', '--dtype', 'f32', '--json']);
    expect(before.status, before.stderr).toBe(0);
    const evalBefore = JSON.parse(before.stdout.trim().split('\n').pop()!).nll;
    expect(lastEval).toBeLessThan(evalBefore - 1); // trained: well below the untrained model's held-out loss
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.model', 'loss.svg', 'eval_data.jsonl']) expect(existsSync(path.join(out, f)), f).toBe(true);
    const e = cli(['eval', '--model', out, '--data', path.join(out, 'eval_data.jsonl'), '--max-len', '160', '--dtype', 'f32', '--json']);
    expect(e.status, e.stderr).toBe(0);
    const nll = JSON.parse(e.stdout.trim().split('\n').pop()!).nll;
    console.log(`train e2e: held-out loss before ${evalBefore}; first train loss ${first}, eval losses ${evals.map((x) => x.eval_loss).join(', ')}; wgpu-char eval ${nll}`);
    expect(Math.abs(nll - lastEval) / lastEval).toBeLessThan(TOL.evalVsTrainerEval.rtol);
  });
});
