// Disk full (ENOSPC) while training writes a checkpoint, the final model, the log or loss.svg: one
// line naming the file and the free space, the previous checkpoint intact and resumable (issue 9,
// item 7). The failure is injected through a mock of node:fs (no root or tmpfs needed): every write
// to a path that `fault.match` accepts fails as a full disk would; statfsSync reports `fault.free`.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.ts';
import { readCheckpoint } from '../src/train/checkpoint.ts';
import { Progress } from '../src/train/progress.ts';
import type { TrainArgs } from '../src/train/state.ts';
import { Trainer } from '../src/train/trainer.ts';
import { appendLineDurable, writeFileAtomic } from '../src/util/atomic.ts';
import { FakeEngine, synthData, TINY_CFG } from './train-fake-engine.ts';

const fault = vi.hoisted(() => ({
  match: null as null | ((path: string) => boolean),
  /** Bytes free as statfsSync reports them (null: the real value). */
  free: null as null | number,
  fds: new Map<number, string>(),
  hits: 0,
}));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const enospc = (syscall: string) => {
    fault.hits++;
    return Object.assign(new Error(`ENOSPC: no space left on device, ${syscall}`), { code: 'ENOSPC', errno: -28, syscall });
  };
  const hit = (p: unknown) => typeof p === 'string' && fault.match !== null && fault.match(p);
  const mod = {
    ...fs,
    openSync: ((p: string, ...rest: unknown[]) => {
      const fd = (fs.openSync as (...a: unknown[]) => number)(p, ...rest);
      fault.fds.set(fd, String(p));
      return fd;
    }) as typeof fs.openSync,
    closeSync: ((fd: number) => {
      fault.fds.delete(fd);
      return fs.closeSync(fd);
    }) as typeof fs.closeSync,
    writeSync: ((fd: number, ...rest: unknown[]) => {
      if (hit(fault.fds.get(fd))) throw enospc('write');
      return (fs.writeSync as (...a: unknown[]) => number)(fd, ...rest);
    }) as typeof fs.writeSync,
    writeFileSync: ((p: unknown, ...rest: unknown[]) => {
      if (hit(p)) throw enospc('write');
      return (fs.writeFileSync as (...a: unknown[]) => void)(p, ...rest);
    }) as typeof fs.writeFileSync,
    statfsSync: ((p: string, ...rest: unknown[]) => {
      const real = (fs.statfsSync as (...a: unknown[]) => import('node:fs').StatsFs)(p, ...rest);
      return fault.free === null ? real : { ...real, bsize: 4096, bavail: Math.floor(fault.free / 4096) };
    }) as typeof fs.statfsSync,
  };
  return { ...mod, default: mod };
});

let tmp: string;
let counter = 0;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'wgpu-char-disk-full-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
afterEach(() => {
  fault.match = null;
  fault.free = null;
  fault.hits = 0;
});
const newOut = () => join(tmp, `run${counter++}`);

const DATA = synthData(23, 4);
function args(out: string, over: Partial<TrainArgs> = {}): TrainArgs {
  return {
    data: 'synthetic', model: 'weights/tiny', out, log: join(out, 'train_log.jsonl'), maxLen: 64, evalRatio: 0.15, seed: 42,
    shuffle: true, batchSize: 2, gradAccum: 3, epochs: 3, maxSteps: 0, lr: 0.05, weightDecay: 0.1, warmupRatio: 0.2,
    lrScheduler: 'cosine', maxGradNorm: 1.0, dtype: 'f32', checkpointing: true, saveEveryEpoch: true, ...over,
  };
}
async function run(a: TrainArgs, resumeFrom?: string) {
  const resume = resumeFrom ? readCheckpoint(resumeFrom) : undefined;
  const engine = FakeEngine.fromSeed(resume ? 99 : 7);
  const trainer = await Trainer.create({
    args: a, engine, cfg: TINY_CFG, data: DATA, tokenizerDir: 'weights/tiny', resume, progress: new Progress({ write: () => true, isTTY: false }, 1000),
  });
  return { engine, result: await trainer.run() };
}
const weightsOf = async (e: FakeEngine) => [...await e.exportWeights()].map(([k, t]) => [k, Buffer.from(t.data.buffer).toString('base64')]);

/** The error `work` rejects with. */
async function failure(work: () => Promise<unknown>): Promise<Error> {
  const e = await work().then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(UserError);
  return e as Error;
}

describe('disk full', () => {
  it('while writing a checkpoint: one line naming the file and the free space; the previous checkpoint intact and resumable', async () => {
    const o = newOut();
    fault.match = (p) => p.includes('checkpoint-6') && p.includes('optimizer.safetensors');
    fault.free = 3 * 2 ** 20;
    const e = await failure(() => run(args(o)));
    expect(fault.hits).toBe(1);
    expect(e.message).not.toContain('\n');
    expect(e.message).toBe(`${join(o, 'checkpoint-6', 'optimizer.safetensors')}: disk full (3.0 MiB free); ` +
      `the last complete checkpoint ${join(o, 'checkpoint-3')} is intact: free some space and continue with --resume ${o}`);
    // no half-written checkpoint, no temp files
    expect(readdirSync(o).filter((f) => f.startsWith('checkpoint-'))).toEqual(['checkpoint-3']);
    expect(readdirSync(o).filter((f) => f.includes('.tmp'))).toEqual([]);
    fault.match = null;
    const resumed = await run(args(o), o);
    const ref = await run(args(newOut()));
    expect(await weightsOf(resumed.engine)).toEqual(await weightsOf(ref.engine));
  });

  it('while writing the model of a checkpoint (inside saveLlamaCheckpointCpu): names model.safetensors, not a temp file', async () => {
    const o = newOut();
    fault.match = (p) => p.includes('checkpoint-3') && p.includes('model.safetensors');
    const e = await failure(() => run(args(o)));
    expect(e.message).toMatch(new RegExp(`^${escape(join(o, 'checkpoint-3', 'model.safetensors'))}: disk full \\(\\d.* free\\); no checkpoint was written yet$`));
    expect(readdirSync(o).filter((f) => f.startsWith('checkpoint-'))).toEqual([]);
  });

  it('while writing the final model: the model already in OUT (a resumed run) and the checkpoints stay', async () => {
    const o = newOut();
    fault.match = (p) => p.startsWith(join(o, 'model.safetensors'));
    const e = await failure(() => run(args(o)));
    expect(e.message).toMatch(new RegExp(`^${escape(join(o, 'model.safetensors'))}: disk full \\(.* free\\); the last complete checkpoint ${escape(join(o, 'checkpoint-9'))} is intact`));
    expect(existsSync(join(o, 'model.safetensors'))).toBe(false);
    expect(readCheckpoint(o).state.step).toBe(9);
  });

  it('while appending to the log, and in writeFileAtomic / appendLineDurable themselves', async () => {
    const o = newOut();
    fault.match = (p) => p === join(o, 'train_log.jsonl');
    // the fresh log is written through writeFileAtomic (its temp file is not matched), the first append fails
    const e = await failure(() => run(args(o)));
    expect(e.message).toMatch(new RegExp(`^${escape(join(o, 'train_log.jsonl'))}: disk full \\(.* free\\); no checkpoint was written yet$`));

    const f = join(tmp, 'atomic.txt');
    writeFileAtomic(f, 'old');
    fault.match = (p) => p.startsWith(f);
    fault.free = 0;
    expect(() => writeFileAtomic(f, 'new')).toThrow(UserError);
    expect(() => writeFileAtomic(f, 'new')).toThrow(`${f}: disk full (0 B free)`);
    expect(readFileSync(f, 'utf8')).toBe('old');
    expect(readdirSync(tmp).filter((x) => x.startsWith('atomic.txt'))).toEqual(['atomic.txt']);
    expect(() => appendLineDurable(f, 'x')).toThrow(`${f}: disk full (0 B free)`);
    // other errors are not disguised
    fault.match = null;
    expect(() => writeFileAtomic(join(tmp, 'no-such-dir', 'x'), 'y')).toThrow(/ENOENT/);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
