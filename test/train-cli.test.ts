// `wgpu-char train` options, argument resolution on resume, and Ctrl-C: the handler's logic, then a
// real SIGINT sent to a child process running the trainer with the fake engine.
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.ts';
import { readCheckpoint } from '../src/train/checkpoint.ts';
import { loadLlamaConfig } from '../src/formats/hf-checkpoint.ts';
import { register as registerTrainCommand } from '../src/cli/train.ts';
import { resolveTrainArgs, runTrainCommand, type TrainCliOptions, type TrainStepCreateOptions, type TrainStepModule } from '../src/train/run.ts';
import { Progress } from '../src/train/progress.ts';
import type { TrainArgs } from '../src/train/state.ts';
import { installSigintHandler, Trainer, type StopFlag } from '../src/train/trainer.ts';
import { FakeEngine, synthData, TINY_CFG } from './train-fake-engine.ts';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'wgpu-char-train-cli-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Parses `argv` with the real train command; returns its options and which were given explicitly. */
async function parse(argv: string[]): Promise<{ opts: TrainCliOptions; explicit: (k: string) => boolean }> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  registerTrainCommand(program);
  const train = program.commands.find((c) => c.name() === 'train')!;
  let got: { opts: TrainCliOptions; explicit: (k: string) => boolean } | undefined;
  train.action((opts: TrainCliOptions, cmd: Command) => {
    got = { opts, explicit: (k) => ![undefined, 'default'].includes(cmd.getOptionValueSource(k)) };
  });
  await program.parseAsync(['train', ...argv], { from: 'user' });
  return got!;
}

describe('train options', () => {
  it('defaults are the reference hyper-parameters', async () => {
    const { opts, explicit } = await parse(['--data', 'd.jsonl', '--out', 'runs/x']);
    expect(opts).toMatchObject({
      data: 'd.jsonl', out: 'runs/x', model: 'weights/tiny', maxLen: 2048, evalRatio: 0.02, seed: 42, shuffle: true, batchSize: 2, gradAccum: 4,
      epochs: 10, maxSteps: 0, lr: 2e-5, weightDecay: 0.1, warmupRatio: 0.04, lrScheduler: 'cosine', maxGradNorm: 1, dtype: 'bf16',
      checkpointing: true, saveEveryEpoch: false, progressEvery: 10,
    });
    expect(explicit('data')).toBe(true);
    expect(explicit('lr')).toBe(false);
    const args = resolveTrainArgs(opts, explicit);
    expect(args.log).toBe(join('runs/x', 'train_log.jsonl'));
    expect(Object.keys(args)).not.toContain('progressEvery');
  });

  it('parses every option', async () => {
    const { opts } = await parse([
      '--data', 'd', '--out', 'o', '--model', 'm', '--log', 'l.jsonl', '--max-len', '512', '--eval-ratio', '0.1', '--seed', '7', '--no-shuffle',
      '--batch-size', '3', '--grad-accum', '2', '--epochs', '4', '--max-steps', '9', '--lr', '1e-4', '--weight-decay', '0', '--warmup-ratio', '0',
      '--lr-scheduler', 'constant', '--max-grad-norm', '0.5', '--dtype', 'f32', '--no-checkpointing', '--save-every-epoch', '--progress-every', '3',
    ]);
    expect(opts).toMatchObject({
      data: 'd', out: 'o', model: 'm', log: 'l.jsonl', maxLen: 512, evalRatio: 0.1, seed: 7, shuffle: false, batchSize: 3, gradAccum: 2, epochs: 4,
      maxSteps: 9, lr: 1e-4, weightDecay: 0, warmupRatio: 0, lrScheduler: 'constant', maxGradNorm: 0.5, dtype: 'f32', checkpointing: false,
      saveEveryEpoch: true, progressEvery: 3,
    });
  });

  it('rejects bad values', async () => {
    for (const bad of [['--batch-size', '0'], ['--lr', 'x'], ['--lr-scheduler', 'linear'], ['--dtype', 'f16'], ['--max-grad-norm', '0'], ['--eval-ratio', '-1']]) {
      await expect(parse(['--data', 'd', '--out', 'o', ...bad])).rejects.toThrow();
    }
  });

  it('needs --data and --out unless resuming', async () => {
    const { opts, explicit } = await parse(['--data', 'd']);
    expect(() => resolveTrainArgs(opts, explicit)).toThrow(UserError);
    expect(() => resolveTrainArgs(opts, explicit)).toThrow('--out is required');
  });

  it('on resume takes the checkpoint\'s arguments unless given explicitly', async () => {
    const saved: TrainArgs = {
      data: 'saved.jsonl', model: 'weights/m', out: 'runs/a', log: 'runs/a/custom.jsonl', maxLen: 512, evalRatio: 0.1, seed: 7, shuffle: false,
      batchSize: 3, gradAccum: 2, epochs: 4, maxSteps: 0, lr: 1e-4, weightDecay: 0, warmupRatio: 0, lrScheduler: 'constant', maxGradNorm: 0.5,
      dtype: 'f32', checkpointing: true, saveEveryEpoch: true,
    };
    const resume = { dir: 'runs/a/checkpoint-5', optimizer: new Map(), state: { args: saved } } as unknown as Parameters<typeof resolveTrainArgs>[2];
    let p = await parse(['--resume', 'runs/a']);
    expect(resolveTrainArgs(p.opts, p.explicit, resume)).toEqual(saved);
    p = await parse(['--resume', 'runs/a', '--no-checkpointing', '--lr', '3e-4']);
    expect(resolveTrainArgs(p.opts, p.explicit, resume)).toEqual({ ...saved, checkpointing: false, lr: 3e-4 }); // the trainer refuses the lr
    p = await parse(['--resume', 'runs/a', '--out', 'runs/b']);
    expect(resolveTrainArgs(p.opts, p.explicit, resume)).toMatchObject({ out: 'runs/b', log: join('runs/b', 'train_log.jsonl') });
  });
});

describe('the whole command (fake engine in place of src/train/step.ts)', () => {
  const PROMPT = 'I want you to act like Beethoven. The status of you is as follows:\nLocation: Vienna\n\n';
  function dataFile(): string {
    const f = join(tmp, 'prompted.jsonl');
    const lines = Array.from({ length: 14 }, (_, i) => JSON.stringify({
      prompt: i === 5 ? PROMPT + 'long '.repeat(200) + '\n\n' : PROMPT,
      output: `Beethoven (speaking): ${'la '.repeat(i * 3)}number ${i}.<|eot|>\nMan (speaking): Bravo!<|eot|>\n`,
    }));
    writeFileSync(f, lines.join('\n') + '\n');
    return f;
  }
  const created: TrainStepCreateOptions[] = [];
  const loader = (stopAt?: number) => async (): Promise<TrainStepModule> => ({
    TrainStep: {
      create: async (o) => {
        created.push(o);
        const cfg = loadLlamaConfig(o.modelDir);
        const engine = FakeEngine.fromDir(o.modelDir, { weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm }, cfg);
        if (stopAt !== undefined) engine.onStep = (s) => { if (s === stopAt) process.emit('SIGINT'); };
        return engine;
      },
    },
  });
  async function cli(argv: string[], stopAt?: number): Promise<number> {
    const { opts, explicit } = await parse(argv);
    return runTrainCommand(opts, explicit, loader(stopAt));
  }

  it('trains, is stopped by SIGINT (130), resumes with --resume OUT to the same model as an uninterrupted run', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const w = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const data = dataFile();
      const common = ['--data', data, '--epochs', '3', '--eval-ratio', '0.2', '--max-len', '100', '--lr', '1e-3', '--save-every-epoch'];
      const ref = join(tmp, 'cli-ref'), o = join(tmp, 'cli-run');
      expect(await cli([...common, '--out', ref])).toBe(0);
      expect(created[0]).toMatchObject({ modelDir: 'weights/tiny', dtype: 'bf16', maxBatch: 2, checkpointing: true, weightDecay: 0.1, maxGradNorm: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
      expect(created[0].maxLen).toBeLessThanOrEqual(100);
      const msgs = err.mock.calls.map((c) => String(c[0]));
      expect(msgs.some((m) => m.includes('skipped 1 of 14 sample(s) whose prompt alone fills --max-len 100: #6'))).toBe(true);
      expect(msgs.some((m) => m.includes('14 samples: 10 train, 3 eval, 1 skipped'))).toBe(true);
      expect(msgs.some((m) => m.includes('5 micro-batches of 2 per epoch → 1 steps of 4 (the epoch\'s last step also takes the 1 leftover micro-batch); 3 steps over 3 epoch(s), warmup 1'))).toBe(true);
      expect(String(log.mock.calls.at(-1)![0])).toContain('done: 3/3 steps');

      expect(await cli([...common, '--out', o], 2)).toBe(130);
      expect(readCheckpoint(o).state.step).toBe(2);
      expect(String(log.mock.calls.at(-1)![0])).toContain(`interrupted at step 2/3; resume with --resume ${join(o, 'checkpoint-2')}`);
      expect(process.listenerCount('SIGINT')).toBe(0);
      expect(await cli(['--resume', o])).toBe(0);
      expect(created.length).toBe(3);
      // settings that change the trajectory are refused before the engine is built
      await expect(cli(['--resume', o, '--lr', '0.5'])).rejects.toThrow(/different settings: lr 0.5/);
      await expect(cli([...common, '--out', o])).rejects.toThrow(/already holds checkpoint-3/);
      expect(created.length).toBe(3);
      expect(created.every((c) => c.modelDir === 'weights/tiny')).toBe(true); // resumed engines start from --model; the checkpoint's state is imported after
      expect(readFileSync(join(o, 'model.safetensors')).equals(readFileSync(join(ref, 'model.safetensors')))).toBe(true);
      const strip = (f: string) => readFileSync(f, 'utf8').replace(/,"tokens_per_s":[^,]*,"elapsed_s":[^}]*/g, '');
      expect(strip(join(o, 'train_log.jsonl'))).toBe(strip(join(ref, 'train_log.jsonl')));
      expect(readFileSync(join(o, 'checkpoint-3', 'optimizer.safetensors')).equals(readFileSync(join(ref, 'checkpoint-3', 'optimizer.safetensors')))).toBe(true);
    } finally {
      err.mockRestore();
      log.mockRestore();
      w.mockRestore();
    }
  });
});

describe('Ctrl-C', () => {
  it('first SIGINT requests a stop, the second one quits; uninstall removes the handler', () => {
    const proc = new EventEmitter() as EventEmitter & NodeJS.Process;
    const stop: StopFlag = { requested: false };
    const events: string[] = [];
    const uninstall = installSigintHandler(stop, { onFirst: () => events.push('first'), onSecond: () => events.push('second') }, proc);
    expect(proc.listenerCount('SIGINT')).toBe(1);
    proc.emit('SIGINT');
    expect(stop.requested).toBe(true);
    proc.emit('SIGINT');
    proc.emit('SIGINT');
    expect(events).toEqual(['first', 'second', 'second']);
    uninstall();
    expect(proc.listenerCount('SIGINT')).toBe(0);
  });

  it('a real SIGINT finishes the step, saves a checkpoint, exits 130, and the run resumes exactly', async () => {
    const out = join(tmp, 'sigint');
    const url = (p: string) => pathToFileURL(resolve(p)).href;
    const script = join(tmp, 'child.mts'); // .mts: ESM (top-level await) outside the package
    // 40 epochs × 3 steps, ~20 ms per step: SIGINT arrives mid-run.
    const argsJson = JSON.stringify(runArgs(out));
    writeFileSync(script, `
      import { Trainer, installSigintHandler } from ${JSON.stringify(url('src/train/trainer.ts'))};
      import { Progress } from ${JSON.stringify(url('src/train/progress.ts'))};
      import { FakeEngine, synthData, TINY_CFG } from ${JSON.stringify(url('test/train-fake-engine.ts'))};
      const engine = FakeEngine.fromSeed(7);
      let stepSeen = 0;
      engine.onStep = async (s) => { stepSeen = s; process.stdout.write('step ' + s + '\\n'); await new Promise((r) => setTimeout(r, 20)); };
      const stop = { requested: false };
      installSigintHandler(stop, { onFirst: () => process.stdout.write('sigint at ' + stepSeen + '\\n'), onSecond: () => process.exit(99) });
      const trainer = await Trainer.create({ args: ${argsJson}, engine, cfg: TINY_CFG, data: synthData(23, 4), tokenizerDir: 'weights/tiny',
        progress: new Progress({ write: () => true }, 1000), stop });
      const r = await trainer.run();
      process.stdout.write('result ' + JSON.stringify({ interrupted: r.interrupted, step: r.step, dir: r.checkpointDir }) + '\\n');
      process.exit(r.interrupted ? 130 : 0);
    `);
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', sent = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sent && /step 5\n/.test(stdout)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    expect({ code, stderr }).toEqual({ code: 130, stderr: expect.any(String) });
    const result = JSON.parse(/result (.*)\n/.exec(stdout)![1]) as { interrupted: boolean; step: number; dir: string };
    const at = Number(/sigint at (\d+)/.exec(stdout)![1]);
    expect(result.interrupted).toBe(true);
    expect(result.step).toBe(at); // the step in flight was finished, no further step started
    expect(result.step).toBeLessThan(120);
    expect(result.dir).toBe(join(out, `checkpoint-${result.step}`));
    expect(readCheckpoint(out).state.step).toBe(result.step);
    const logged = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number });
    expect(logged.filter((e) => e.loss !== undefined).length).toBe(result.step);

    // resume in this process; compare with an uninterrupted run
    const resume = readCheckpoint(out);
    const engine = FakeEngine.fromSeed(99); // weights come from the checkpoint's master.* entries
    const quiet = new Progress({ write: () => true }, 1000);
    await (await Trainer.create({ args: runArgs(out), engine, cfg: TINY_CFG, data: synthData(23, 4), tokenizerDir: 'weights/tiny', resume, progress: quiet })).run();
    const refEngine = FakeEngine.fromSeed(7);
    await (await Trainer.create({ args: runArgs(join(tmp, 'sigint-ref')), engine: refEngine, cfg: TINY_CFG, data: synthData(23, 4), tokenizerDir: 'weights/tiny', progress: quiet })).run();
    const a = await engine.exportWeights(), b = await refEngine.exportWeights();
    for (const [k, t] of b) expect(Buffer.from(a.get(k)!.data.buffer).equals(Buffer.from(t.data.buffer))).toBe(true);
  }, 60_000);
});

function runArgs(out: string): TrainArgs {
  return {
    data: 'synthetic', model: 'weights/tiny', out, log: join(out, 'train_log.jsonl'), maxLen: 64, evalRatio: 0.15, seed: 42, shuffle: true,
    batchSize: 2, gradAccum: 3, epochs: 40, maxSteps: 0, lr: 0.05, weightDecay: 0.1, warmupRatio: 0.2, lrScheduler: 'cosine', maxGradNorm: 1.0,
    dtype: 'bf16', checkpointing: true, saveEveryEpoch: false,
  };
}
