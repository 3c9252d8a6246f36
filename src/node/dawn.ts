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
import { requestGpu, type Gpu } from '../gpu/device.ts';
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
  return requestGpu(gpuEntry, { backend: defaultBackend(), kernels: nodeKernelFiles });
}
