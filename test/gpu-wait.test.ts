/**
 * How the process waits for the GPU (src/node/dawn.ts): asleep in slices on a software adapter,
 * a plain await on hardware, WGPU_CHAR_GPU_WAIT to choose. The rest of the suite runs every GPU
 * test through the mode chosen here (lavapipe: sleep), so this file checks the waiter itself.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.ts';
import { awaitGpu, type GpuReport } from '../src/gpu/device.ts';
import { chooseWait, sleepingWait } from '../src/node/dawn.ts';
import { createStorageFrom, readF32 } from '../src/gpu/buffers.ts';
import { gpu } from './util/gpu.ts';

const report = (isSoftware: boolean) => ({ isSoftware }) as GpuReport;

describe('GPU wait mode', () => {
  const saved = process.env.WGPU_CHAR_GPU_WAIT;
  afterEach(() => {
    if (saved === undefined) delete process.env.WGPU_CHAR_GPU_WAIT;
    else process.env.WGPU_CHAR_GPU_WAIT = saved;
  });

  it('sleeps on a software adapter and awaits on hardware, unless WGPU_CHAR_GPU_WAIT says otherwise', () => {
    delete process.env.WGPU_CHAR_GPU_WAIT;
    expect(chooseWait(report(true))).toBe(sleepingWait);
    expect(chooseWait(report(false))).toBe(awaitGpu);
    process.env.WGPU_CHAR_GPU_WAIT = 'await';
    expect(chooseWait(report(true))).toBe(awaitGpu);
    process.env.WGPU_CHAR_GPU_WAIT = 'sleep';
    expect(chooseWait(report(false))).toBe(sleepingWait);
  });

  it('refuses an unknown WGPU_CHAR_GPU_WAIT in one line', () => {
    process.env.WGPU_CHAR_GPU_WAIT = 'spin';
    expect(() => chooseWait(report(true))).toThrow(UserError);
    expect(() => chooseWait(report(true))).toThrow("WGPU_CHAR_GPU_WAIT=spin: expected 'await' or 'sleep'");
  });

  it('sleepingWait gives the value of a promise that resolves later, and the error of one that rejects', async () => {
    const later = <T>(ms: number, f: () => T) => new Promise<T>((resolve, reject) => setTimeout(() => { try { resolve(f()); } catch (e) { reject(e); } }, ms));
    const t0 = performance.now();
    expect(await sleepingWait.settle(later(30, () => 42))).toBe(42);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    await expect(sleepingWait.settle(later(5, () => { throw new Error('boom'); }))).rejects.toThrow('boom');
    expect(await sleepingWait.settle(Promise.resolve('now'))).toBe('now');
  });

  it.skipIf(!gpu)('a readback through the device waits with the chosen mode and returns the data', async () => {
    const g = gpu!;
    expect(g.waitMode).toBe(g.report.isSoftware ? 'sleep' : 'await');
    const data = Float32Array.from({ length: 1001 }, (_, i) => Math.sin(i) * 3.5);
    const buf = createStorageFrom(g, 'wait-test', data);
    expect(await readF32(g, buf, data.length)).toEqual(data);
    buf.destroy();
  });
});
