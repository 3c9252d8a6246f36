/**
 * The Node side of the GPU runtime: a WebGPU device from Dawn's node bindings (npm `webgpu`),
 * reading the kernels from kernels/ on disk.
 *
 * Dawn crashes inside its event processing when the GPU or adapter objects are temporaries that
 * get garbage-collected while the device lives. So the one `Gpu` of the process lives in a
 * module-level binding and is never dropped: `acquireGpu()` creates it once and every later call
 * returns the same object. Callers must also never run hot loops at module top level.
 */
import { create, globals } from 'webgpu';
import { UserError } from '../errors.ts';
import { awaitGpu, requestGpu, type Gpu, type GpuReport, type GpuWait } from '../gpu/device.ts';
import { nodeKernelFiles } from './kernel-files.ts';

// WebGPU's constants (GPUBufferUsage, GPUShaderStage, GPUMapMode, ...) are globals in a browser.
Object.assign(globalThis, globals);

// The long-lived bindings (see the header): never let these go out of scope.
let gpuEntry: GPU | undefined;
let acquired: Promise<Gpu> | undefined;

/** The platform's default Dawn backend: WebGPU adapters do not report it. */
function defaultBackend(): string {
  if (process.platform === 'darwin') return 'metal';
  if (process.platform === 'win32') return 'd3d12';
  return 'vulkan';
}

export function acquireGpu(): Promise<Gpu> {
  acquired ??= acquireGpuOnce();
  return acquired;
}

async function acquireGpuOnce(): Promise<Gpu> {
  // The Vulkan loader prints noisy errors without XDG_RUNTIME_DIR; harmless, but they confuse users.
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  gpuEntry = create([]);
  return requestGpu(gpuEntry, { backend: defaultBackend(), kernels: nodeKernelFiles, wait: chooseWait });
}

const WAIT_ENV = 'WGPU_CHAR_GPU_WAIT';

/**
 * How this process waits for the GPU: `sleep` on a software adapter, `await` on hardware;
 * WGPU_CHAR_GPU_WAIT=await|sleep overrides (the benchmarks compare the two).
 *
 * Why: while a GPU promise is pending, Dawn's node bindings poll for it in a setImmediate loop that
 * keeps the main thread (and V8's garbage collector, which sweeps the loop's garbage) busy. On a
 * hardware GPU that costs a CPU core and nothing else. On a software adapter such as lavapipe the
 * "GPU" is this machine's cores, and the poll takes one of them from the kernels: measured with
 * perf on the 2-core CI machine, the kernel threads got 44% of the samples and the polling main
 * thread plus the collector about half.
 */
export function chooseWait(report: GpuReport): GpuWait {
  const asked = process.env[WAIT_ENV];
  if (asked !== undefined && asked !== 'await' && asked !== 'sleep') {
    throw new UserError(`${WAIT_ENV}=${asked}: expected 'await' or 'sleep'`);
  }
  const mode = asked ?? (report.isSoftware ? 'sleep' : 'await');
  return mode === 'sleep' ? sleepingWait : awaitGpu;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Waits shorter than this (ms) are polled, longer ones slept. Measured on the 2-core CI machine
 * (bench/decode.ts, 5 alternating runs each): weights/tiny's 4 ms decode steps run 228-261 tok/s
 * polled and 113-199 slept, the 30M model's 30 ms steps 20-26 polled and 30-36 slept. A small
 * model's dispatches keep one of lavapipe's threads busy, so the poll costs nothing; a larger one's
 * keep both, and polling, even for the first 10 ms of a wait, takes a core from them.
 */
const POLL_BELOW_MS = 10;
/** How long the last wait took: the next one is likely the same kind (a decode loop, training steps). */
let lastWaitMs = Infinity;

/**
 * Waits for `pending`: polled (a plain await) when the last wait was short, else mostly asleep: the
 * main thread blocks (Atomics.wait, no CPU) for a slice, then lets the event loop turn once, which
 * runs Dawn's poll and, when the GPU is done, the promise's callbacks. A slice is a tenth of the
 * time waited so far, at most 1 ms (Atomics.wait itself overshoots by about 0.1 ms here), so a
 * 30 ms decode step is not made much longer and a training step costs a wake-up a millisecond.
 */
export const sleepingWait: GpuWait = {
  name: 'sleep',
  async settle<T>(pending: Promise<T>): Promise<T> {
    const start = performance.now();
    if (lastWaitMs < POLL_BELOW_MS) {
      try {
        return await pending;
      } finally {
        lastWaitMs = performance.now() - start;
      }
    }
    let done = false;
    // Both outcomes end the wait; the caller gets `pending` itself, so a rejection reaches it once.
    pending.then(
      () => (done = true),
      () => (done = true),
    );
    await new Promise((r) => setImmediate(r));
    while (!done) {
      Atomics.wait(sleeper, 0, 0, Math.min(1, (performance.now() - start) * 0.1));
      await new Promise((r) => setImmediate(r));
    }
    lastWaitMs = performance.now() - start;
    return pending;
  },
};
