// `wgpu-char train` options, argument resolution on resume, and Ctrl-C: the handler's logic, then a
// real SIGINT sent to a child process running the trainer with the fake engine.
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
      checkpointing: true, saveEveryEpoch: false, saveSteps: 0, saveTotalLimit: 0, progressEvery: 10,
    });
    expect(opts.overwrite).toBeUndefined();
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
      '--save-steps', '5', '--save-total-limit', '2', '--overwrite',
    ]);
    expect(opts).toMatchObject({
      data: 'd', out: 'o', model: 'm', log: 'l.jsonl', maxLen: 512, evalRatio: 0.1, seed: 7, shuffle: false, batchSize: 3, gradAccum: 2, epochs: 4,
      maxSteps: 9, lr: 1e-4, weightDecay: 0, warmupRatio: 0, lrScheduler: 'constant', maxGradNorm: 0.5, dtype: 'f32', checkpointing: false,
      saveEveryEpoch: true, progressEvery: 3, saveSteps: 5, saveTotalLimit: 2, overwrite: true,
    });
  });

  it('rejects bad values', async () => {
    for (const bad of [['--save-total-limit', '-1'], ['--batch-size', '0'], ['--lr', 'x'], ['--lr-scheduler', 'linear'], ['--dtype', 'f16'], ['--max-grad-norm', '0'], ['--eval-ratio', '-1']]) {
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
  const loader = (stopAt?: number, onCreate?: (e: FakeEngine) => void) => async (): Promise<TrainStepModule> => ({
    TrainStep: {
      create: async (o) => {
        created.push(o);
        const cfg = loadLlamaConfig(o.modelDir);
        const engine = FakeEngine.fromDir(o.modelDir, { weightDecay: o.weightDecay, maxGradNorm: o.maxGradNorm }, cfg);
        if (stopAt !== undefined) engine.onStep = (s) => { if (s === stopAt) process.emit('SIGINT'); };
        onCreate?.(engine);
        return engine;
      },
    },
  });
  async function cli(argv: string[], stopAt?: number, onCreate?: (e: FakeEngine) => void): Promise<number> {
    const { opts, explicit } = await parse(argv);
    return runTrainCommand(opts, explicit, loader(stopAt, onCreate));
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
      await expect(cli([...common, '--out', o])).rejects.toThrow(/already holds a run \(.*checkpoint-.*; continue it with --resume/);
      expect(existsSync(join(o, '.train.lock'))).toBe(false); // released after the SIGINT, the resume and the errors
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

  /** Runs `work` with console and stderr captured; returns what went to console.error. */
  async function quietly<T>(work: () => Promise<T>): Promise<{ value?: T; error?: Error; said: string[] }> {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const w = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const value = await work();
      return { value, said: err.mock.calls.map((c) => String(c[0])) };
    } catch (e) {
      return { error: e as Error, said: err.mock.calls.map((c) => String(c[0])) };
    } finally {
      err.mockRestore();
      log.mockRestore();
      w.mockRestore();
    }
  }
  const QUICK = ['--epochs', '2', '--eval-ratio', '0.2', '--max-len', '100', '--lr', '1e-3'];
  let dirCount = 0;
  const newDir = () => join(tmp, `rundir${dirCount++}`);
  /** Expects a one-line UserError from `argv` with no engine built; returns its message. */
  async function refused(argv: string[]): Promise<string> {
    const before = created.length;
    const r = await quietly(() => cli(argv));
    expect(r.error, `expected ${argv.join(' ')} to fail`).toBeInstanceOf(UserError);
    expect(r.error!.message).not.toContain('\n');
    expect(created.length).toBe(before);
    return r.error!.message;
  }

  describe('the run directory is locked while a run owns it (issue 9, item 1)', () => {
    it('a second run into a directory a live process holds fails at once, naming the directory and the pid', async () => {
      const out = newDir();
      mkdirSync(out);
      writeFileSync(join(out, '.train.lock'), String(process.ppid));
      const msg = await refused(['--data', dataFile(), '--out', out, ...QUICK]);
      expect(msg).toBe(`${out}: another run (pid ${process.ppid}) is writing to this folder (lock file .train.lock); wait for it or stop it`);
      expect(readFileSync(join(out, '.train.lock'), 'utf8')).toBe(String(process.ppid)); // not ours to remove
      expect(readdirSync(out)).toEqual(['.train.lock']);
    });

    it('two runs at once in one process: the second fails, the first finishes and releases the lock', async () => {
      const out = newDir();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const first = quietly(() => cli(['--data', dataFile(), '--out', out, ...QUICK], undefined, (e) => {
        e.onStep = async (s) => { if (s === 1) { started(); await gate; } };
      }));
      await Promise.race([running, first]); // (a first run that failed early would not reach step 1)
      expect(readFileSync(join(out, '.train.lock'), 'utf8')).toBe(String(process.pid));
      const msg = await refused(['--data', dataFile(), '--out', out, ...QUICK]);
      expect(msg).toMatch(new RegExp(`^${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: another run \\(pid ${process.pid}\\) is writing to this folder`));
      release();
      expect((await first).value).toBe(0);
      expect(existsSync(join(out, '.train.lock'))).toBe(false);
      expect(readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step)).toEqual([1, 1, 2, 2]);
    });

    it('a stale lock (its pid has exited) is taken over, saying so once', async () => {
      const out = newDir();
      mkdirSync(out);
      const exited = spawn(process.execPath, ['-e', '0']);
      await new Promise((r) => exited.on('close', r));
      writeFileSync(join(out, '.train.lock'), String(exited.pid));
      const r = await quietly(() => cli(['--data', dataFile(), '--out', out, ...QUICK]));
      expect(r.value).toBe(0);
      expect(r.said.filter((m) => m.includes('lock'))).toEqual([
        `wgpu-char: ${out}: taking over the lock of pid ${exited.pid}, which is no longer running (lock file .train.lock)`,
      ]);
      expect(existsSync(join(out, '.train.lock'))).toBe(false);
    });

    it('is released when the run fails, and a directory the run created is removed again when it holds nothing', async () => {
      const out = newDir();
      const bad = join(tmp, 'bad.jsonl');
      writeFileSync(bad, '{"prompt": "x", "output": "y"}\n{not json\n');
      const msg = await refused(['--data', bad, '--out', out, ...QUICK]);
      expect(msg).toContain(bad);
      expect(existsSync(out)).toBe(false);
    });
  });

  describe('an --out holding a run is refused unless --resume or --overwrite (issue 9, item 2)', () => {
    it('refuses a finished run\'s directory; --overwrite replaces the run and leaves no stale file of it', async () => {
      const out = newDir();
      expect((await quietly(() => cli(['--data', dataFile(), '--out', out, ...QUICK, '--save-every-epoch']))).value).toBe(0);
      expect(readdirSync(out).sort()).toEqual(['checkpoint-1', 'checkpoint-2', 'config.json', 'eval_data.jsonl', 'loss.svg', 'model.safetensors', 'tokenizer.model', 'train_log.jsonl']);
      const model = readFileSync(join(out, 'model.safetensors'));
      writeFileSync(join(out, 'notes.txt'), 'mine');
      const msg = await refused(['--data', dataFile(), '--out', out, ...QUICK, '--eval-ratio', '0']);
      expect(msg).toBe(`${out}: already holds a run (model.safetensors, train_log.jsonl, checkpoint-1, checkpoint-2, …); ` +
        `continue it with --resume ${out}, replace it with --overwrite, or choose another --out`);
      expect(readFileSync(join(out, 'model.safetensors')).equals(model)).toBe(true);
      // only the model: still refused
      const modelOnly = newDir();
      mkdirSync(modelOnly);
      cpSync(join(out, 'model.safetensors'), join(modelOnly, 'model.safetensors'));
      expect(await refused(['--data', dataFile(), '--out', modelOnly, ...QUICK])).toMatch(/already holds a run \(model\.safetensors\); replace it with --overwrite/);

      const r = await quietly(() => cli(['--data', dataFile(), '--out', out, ...QUICK, '--eval-ratio', '0', '--overwrite']));
      expect(r.value).toBe(0);
      expect(r.said.some((m) => m === `wgpu-char: ${out}: --overwrite: removed the earlier run's checkpoint-1, checkpoint-2, config.json, eval_data.jsonl, loss.svg, model.safetensors, tokenizer.model, train_log.jsonl`)).toBe(true);
      // the old held-out set and checkpoints are gone; files that are not a run's stay
      expect(readdirSync(out).sort()).toEqual(['config.json', 'loss.svg', 'model.safetensors', 'notes.txt', 'tokenizer.model', 'train_log.jsonl']);
      expect(readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').every((l) => !('eval_loss' in JSON.parse(l)))).toBe(true);
    });

    it('--overwrite removes nothing when an input is bad, and never the --model or --data it reads', async () => {
      const out = newDir();
      expect((await quietly(() => cli(['--data', dataFile(), '--out', out, ...QUICK]))).value).toBe(0);
      const files = readdirSync(out).sort();
      await refused(['--data', join(tmp, 'missing.jsonl'), '--out', out, ...QUICK, '--overwrite']);
      await refused(['--data', dataFile(), '--model', join(tmp, 'no-model'), '--out', out, ...QUICK, '--overwrite']);
      expect(readdirSync(out).sort()).toEqual(files);
      expect(await refused(['--data', join(out, 'eval_data.jsonl'), '--out', out, ...QUICK, '--overwrite']))
        .toBe(`${join(out, 'eval_data.jsonl')}: --overwrite would remove this --data file of the earlier run; copy it elsewhere first`);
      expect(await refused(['--data', dataFile(), '--model', out, '--out', out, ...QUICK, '--overwrite']))
        .toBe(`${out}: --out is the --model directory: the run would replace the model it starts from; choose another --out`);
      expect(readdirSync(out).sort()).toEqual(files);
    });

    it('refuses an existing --log file outside --out too', async () => {
      const log = join(tmp, 'elsewhere.jsonl');
      writeFileSync(log, '{"step":1}\n');
      expect(await refused(['--data', dataFile(), '--out', newDir(), '--log', log, ...QUICK]))
        .toBe(`${log}: --log already holds a run's log; continue that run with --resume, replace it with --overwrite, or choose another --log`);
    });
  });

  describe('a resumed run writes into the run directory given (issue 9, item 3)', () => {
    it('a copied run, a checkpoint copied alone, and a moved run', async () => {
      const orig = newDir();
      expect((await quietly(() => cli(['--data', dataFile(), '--out', orig, ...QUICK, '--epochs', '3', '--save-steps', '1'], 2))).value).toBe(130);
      const ref = newDir();
      expect((await quietly(() => cli(['--data', dataFile(), '--out', ref, ...QUICK, '--epochs', '3']))).value).toBe(0);
      const refModel = readFileSync(join(ref, 'model.safetensors'));

      // a copy of the whole run
      const copy = newDir();
      cpSync(orig, copy, { recursive: true });
      expect(await refused(['--resume', copy, '--overwrite'])).toBe(`${join(copy, 'checkpoint-2')}: --overwrite would remove the checkpoint being resumed; drop --overwrite to continue this run`);
      let r = await quietly(() => cli(['--resume', copy]));
      expect(r.value).toBe(0);
      expect(r.said).toContain(`wgpu-char: resuming ${join(copy, 'checkpoint-2')} at step 2, writing into ${copy} (the checkpoint was written in ${orig})`);
      expect(readFileSync(join(copy, 'model.safetensors')).equals(refModel)).toBe(true);
      expect(readCheckpoint(copy).state.args).toMatchObject({ out: copy, log: join(copy, 'train_log.jsonl') });
      expect(existsSync(join(orig, 'model.safetensors'))).toBe(false); // the original run is untouched
      expect(readdirSync(orig).filter((f) => f.startsWith('checkpoint-'))).toEqual(['checkpoint-1', 'checkpoint-2']);

      // one checkpoint-<step> copied into another directory: its parent is the run directory
      const lone = newDir();
      mkdirSync(lone);
      cpSync(join(orig, 'checkpoint-2'), join(lone, 'checkpoint-2'), { recursive: true });
      expect((await quietly(() => cli(['--resume', join(lone, 'checkpoint-2')]))).value).toBe(0);
      expect(readFileSync(join(lone, 'model.safetensors')).equals(refModel)).toBe(true);
      expect(existsSync(join(orig, 'model.safetensors'))).toBe(false);

      // a checkpoint under another name has no run directory: --out is needed
      const cp = join(tmp, `cp${dirCount++}`);
      cpSync(join(orig, 'checkpoint-2'), cp, { recursive: true });
      expect(await refused(['--resume', cp])).toBe(`${cp}: a checkpoint outside its run directory (the name is not checkpoint-<step>); give --out for the run directory`);
      const into = newDir();
      expect((await quietly(() => cli(['--resume', cp, '--out', into]))).value).toBe(0);
      expect(readFileSync(join(into, 'model.safetensors')).equals(refModel)).toBe(true);

      // the run moved: the old path is not recreated
      const moved = newDir();
      renameSync(orig, moved);
      expect((await quietly(() => cli(['--resume', moved]))).value).toBe(0);
      expect(existsSync(orig)).toBe(false);
      expect(readFileSync(join(moved, 'model.safetensors')).equals(refModel)).toBe(true);
    });

    it('the log follows the run directory unless --log is given', async () => {
      const saved = { out: 'runs/a', log: 'runs/a/logs/x.jsonl' } as TrainArgs;
      const resumeOf = (dir: string, args: Partial<TrainArgs>) =>
        ({ dir, runDir: dir.replace(/\/checkpoint-\d+$/, ''), optimizer: new Map(), state: { args: { ...saved, ...args } } }) as unknown as Parameters<typeof resolveTrainArgs>[2];
      const base = { data: 'd', model: 'm' };
      let p = await parse(['--resume', 'runs/b']);
      expect(resolveTrainArgs(p.opts, p.explicit, resumeOf('runs/b/checkpoint-3', base))).toMatchObject({ out: 'runs/b', log: join('runs/b', 'logs/x.jsonl') });
      // a log outside the run directory: kept when resuming in place, else OUT/train_log.jsonl
      const outside = { ...base, log: '/var/log/x.jsonl' };
      p = await parse(['--resume', 'runs/a']);
      expect(resolveTrainArgs(p.opts, p.explicit, resumeOf('runs/a/checkpoint-3', outside))).toMatchObject({ out: 'runs/a', log: '/var/log/x.jsonl' });
      p = await parse(['--resume', 'runs/b']);
      expect(resolveTrainArgs(p.opts, p.explicit, resumeOf('runs/b/checkpoint-3', outside))).toMatchObject({ out: 'runs/b', log: join('runs/b', 'train_log.jsonl') });
      p = await parse(['--resume', 'runs/b', '--log', 'l.jsonl']);
      expect(resolveTrainArgs(p.opts, p.explicit, resumeOf('runs/b/checkpoint-3', base))).toMatchObject({ out: 'runs/b', log: 'l.jsonl' });
    });
  });

  describe('every path is checked before the GPU starts (issue 9, item 6)', () => {
    it('--out a file or under a file, a missing or unreadable input: one line each, nothing created', async () => {
      const file = join(tmp, 'a-file');
      writeFileSync(file, 'x');
      const data = dataFile();
      expect(await refused(['--data', data, '--out', file, ...QUICK])).toBe(`${file}: is a file (--out needs a run directory)`);
      expect(await refused(['--data', data, '--out', join(file, 'sub', 'run'), ...QUICK])).toBe(`${join(file, 'sub', 'run')}: cannot be created, ${file} is a file (--out)`);
      const out = newDir();
      expect(await refused(['--data', join(tmp, 'nope.jsonl'), '--out', out, ...QUICK])).toBe(`${join(tmp, 'nope.jsonl')}: no such file (--data)`);
      expect(await refused(['--data', tmp, '--out', out, ...QUICK])).toBe(`${tmp}: is a directory (--data needs a prompted JSON/JSONL file)`);
      expect(await refused(['--data', data, '--model', join(tmp, 'nope'), '--out', out, ...QUICK])).toBe(`${join(tmp, 'nope')}: no such model directory (--model)`);
      expect(await refused(['--data', data, '--model', file, '--out', out, ...QUICK])).toBe(`${file}: is a file (--model needs an HF model directory)`);
      expect(await refused(['--data', data, '--out', out, '--log', tmp, ...QUICK])).toBe(`${tmp}: is a directory (--log needs a file)`);
      expect(await refused(['--data', data, '--out', out, '--log', join(file, 'log.jsonl'), ...QUICK])).toBe(`${join(file, 'log.jsonl')}: cannot be created, ${file} is a file (--log)`);
      expect(await refused(['--resume', join(tmp, 'nope')])).toBe(`${join(tmp, 'nope')}: no such checkpoint directory`);
      expect(await refused(['--resume', file])).toBe(`${file}: is a file (--resume needs a checkpoint or run directory)`);
      expect(existsSync(out)).toBe(false);
    });

    it('a resumed run whose --data moved names the checkpoint\'s path', async () => {
      const out = newDir();
      const data = join(tmp, 'moving.jsonl');
      cpSync(dataFile(), data);
      expect((await quietly(() => cli(['--data', data, '--out', out, ...QUICK, '--epochs', '3'], 2))).value).toBe(130);
      rmSync(data);
      expect(await refused(['--resume', out])).toBe(`${data}: no such file (--data, from the checkpoint's arguments: give --data)`);
    });
  });

  describe('input errors come before notes about settings (issue 9, item 15)', () => {
    it('a missing data file is the only line; the --max-len clamp is said once, after the data is read', async () => {
      const r = await quietly(() => cli(['--data', join(tmp, 'gone.jsonl'), '--out', newDir()]));
      expect(r.error?.message).toBe(`${join(tmp, 'gone.jsonl')}: no such file (--data)`);
      expect(r.said).toEqual([]);
      const bad = join(tmp, 'bad2.jsonl');
      writeFileSync(bad, '{not json\n');
      const b = await quietly(() => cli(['--data', bad, '--out', newDir()]));
      expect(b.error).toBeInstanceOf(UserError);
      expect(b.said).toEqual([]);
      const ok = await quietly(() => cli(['--data', dataFile(), '--out', newDir(), '--epochs', '1', '--eval-ratio', '0']));
      expect(ok.value).toBe(0);
      const clamp = ok.said.filter((m) => m.includes('max_position_embeddings'));
      expect(clamp).toEqual(['wgpu-char: --max-len 2048 (the default) exceeds the max_position_embeddings 512 of weights/tiny: using 512']);
      const summary = ok.said.findIndex((m) => m.includes('14 samples:'));
      expect(summary).toBeGreaterThan(0);
      expect(ok.said.indexOf(clamp[0])).toBeLessThan(summary);
    });

    it('the help shows each default once', async () => {
      const program = new Command();
      registerTrainCommand(program);
      const help = program.commands.find((c) => c.name() === 'train')!.helpInformation();
      expect(help).not.toMatch(/\(default\)/);
      expect(help).not.toMatch(/\(default[^)]*\)\s*\(default/);
      expect(help).toContain('--overwrite');
      expect(help).toContain('--save-total-limit <n>');
    });
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

describe('a signal before training starts (while the GPU engine is built) (issue 9, item 1)', () => {
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    it(`${signal}: exits ${code} at once and frees the run directory's lock`, async () => {
      const out = join(tmp, `early-${signal}`);
      const data = join(tmp, 'early.jsonl');
      writeFileSync(data, JSON.stringify({ prompt: 'Man (speaking): hi<|eot|>\n', output: 'Beethoven (speaking): hello<|eot|>' }) + '\n');
      const url = (p: string) => pathToFileURL(resolve(p)).href;
      const script = join(tmp, `early-${signal}.mts`);
      const opts = { ...runArgs(out), data, maxLen: 100, evalRatio: 0, saveSteps: 0, saveTotalLimit: 0, progressEvery: 10 };
      writeFileSync(script, `
        import { runTrainCommand } from ${JSON.stringify(url('src/train/run.ts'))};
        const loader = async () => ({ TrainStep: { create: async () => {
          process.stdout.write('creating\\n');
          return new Promise(() => setInterval(() => {}, 1000)); // a GPU start-up that never ends
        } } });
        await runTrainCommand(${JSON.stringify(opts)}, () => true, loader);
      `);
      const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '', stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('creating')) child.kill(signal);
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exit = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
      expect({ exit, stderr }).toMatchObject({ exit: code, stderr: expect.stringContaining(`wgpu-char: ${signal}: stopped without saving\n`) });
      expect(existsSync(join(out, '.train.lock'))).toBe(false);
    }, 60_000);
  }
});

function runArgs(out: string): TrainArgs {
  return {
    data: 'synthetic', model: 'weights/tiny', out, log: join(out, 'train_log.jsonl'), maxLen: 64, evalRatio: 0.15, seed: 42, shuffle: true,
    batchSize: 2, gradAccum: 3, epochs: 40, maxSteps: 0, lr: 0.05, weightDecay: 0.1, warmupRatio: 0.2, lrScheduler: 'cosine', maxGradNorm: 1.0,
    dtype: 'bf16', checkpointing: true, saveEveryEpoch: false,
  };
}
