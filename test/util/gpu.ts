/**
 * GPU access for tests. In CI (`CI=true`) a missing adapter FAILS the test file (CI always has
 * lavapipe); elsewhere GPU tests are skipped with a message saying how to get an adapter.
 */
import type { Gpu } from '../../src/gpu/device.ts';
import { acquireGpu } from '../../src/node/dawn.ts';
import { createStorage, createStorageFrom, readF32, type GpuBuffer } from '../../src/gpu/buffers.ts';
import { Op, Recorder, type OverrideConstants, type ParamLayout } from '../../src/gpu/kernels.ts';

let cached: Gpu | null | undefined;

/** The shared Gpu, or null when none exists and we are not in CI. */
export async function testGpu(): Promise<Gpu | null> {
  if (cached !== undefined) return cached;
  try {
    cached = await acquireGpu();
  } catch (e) {
    if (process.env.CI === 'true') throw new Error(`CI=true but no WebGPU adapter: ${(e as Error).message}`);
    console.warn(`skipping GPU tests: ${(e as Error).message}`);
    cached = null;
  }
  return cached;
}

/** Top-level await helper for `describe.skipIf(!gpu)`. */
export const gpu: Gpu | null = await testGpu();

/** Uploads a typed array (f32, u32, i32 or u16-as-bf16) into a fresh storage buffer. */
export function bufferFrom(g: Gpu, data: ArrayBufferView, label = 'test'): GpuBuffer {
  return createStorageFrom(g, label, data);
}

export function emptyBuffer(g: Gpu, bytes: number, label = 'test'): GpuBuffer {
  return createStorage(g, label, bytes);
}

/** Builds the op, sets params, dispatches once in its own encoder, and waits. */
export async function runOnce(
  g: Gpu,
  kernel: string,
  opts: { constants?: OverrideConstants; params: [ParamLayout, number[]]; bindings: GpuBuffer[]; grid: [number, number?, number?] },
): Promise<void> {
  const op = await Op.create(g, { kernel, constants: opts.constants, bindings: opts.bindings, params: opts.params[0] });
  const rec = new Recorder(g, kernel);
  rec.dispatch(op, opts.params[1], opts.grid[0], opts.grid[1] ?? 1, opts.grid[2] ?? 1);
  rec.submit();
  await g.settle(g.device.queue.onSubmittedWorkDone());
}

export { readF32 };
