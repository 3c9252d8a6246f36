/**
 * WebGPU device acquisition (Dawn's node bindings, npm `webgpu`).
 *
 * Dawn crashes inside its event processing when the GPU or adapter objects are temporaries that
 * get garbage-collected while the device lives (platform notes). So the one `Gpu` of the process
 * lives in a module-level binding and is never dropped: `acquireGpu()` creates it once and every
 * later call returns the same object. Callers must also never run hot loops at module top level.
 */
import { create, globals } from 'webgpu';
import { UserError } from '../errors.ts';

Object.assign(globalThis, globals);

export interface GpuReport {
  description: string;
  vendor: string;
  architecture: string;
  backend: string;
  isSoftware: boolean;
  subgroupSize: number | null;
  features: string[];
  limits: Record<string, number>;
}

export interface Gpu {
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  readonly report: GpuReport;
  /** Largest byte size one storage binding may have: every buffer we bind is split to fit it. */
  readonly maxBindingBytes: number;
  readonly hasSubgroups: boolean;
  /** Set when the device was lost; every later GPU call throws with this reason. */
  lostReason: string | null;
  /** Bytes of GPU buffers we allocated and have not destroyed (WebGPU reports no memory use). */
  allocatedBytes: number;
  peakAllocatedBytes: number;
}

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
  const adapter = await gpuEntry.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new UserError(
      'no WebGPU adapter found: run `npm run setup` (installs Mesa lavapipe on Debian when there is no GPU driver) or install your GPU\'s Vulkan/Metal/D3D12 driver',
    );
  }
  // A plain requestDevice() gets the spec's low default limits (128 MiB bindings become 128 MiB
  // anyway on lavapipe but 1 GiB+ on GPUs): ask for everything the adapter offers.
  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, number>)[key];
    // Dawn clamps the dynamic-offset limits itself and warns when asked for the adapter's value.
    if (typeof v === 'number' && !key.includes('Dynamic')) requiredLimits[key] = v;
  }
  const wanted: GPUFeatureName[] = ['subgroups', 'shader-f16', 'timestamp-query'];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; isFallbackAdapter?: boolean };
  const limits: Record<string, number> = {};
  for (const key in device.limits) {
    const v = (device.limits as unknown as Record<string, number>)[key];
    if (typeof v === 'number') limits[key] = v;
  }
  const report: GpuReport = {
    description: info.description || info.device || 'unknown adapter',
    vendor: info.vendor,
    architecture: info.architecture,
    backend: defaultBackend(),
    isSoftware: info.architecture === 'software' || info.isFallbackAdapter === true,
    subgroupSize: info.subgroupMinSize ?? null,
    features: [...device.features].map(String).sort(),
    limits,
  };
  const gpu: Gpu = {
    device,
    adapter,
    report,
    maxBindingBytes: Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize),
    hasSubgroups: device.features.has('subgroups'),
    lostReason: null,
    allocatedBytes: 0,
    peakAllocatedBytes: 0,
  };
  device.lost.then((lost) => {
    if (lost.reason === 'destroyed') return;
    gpu.lostReason = `GPU device lost (${lost.reason}): ${lost.message || 'no message'} — often out of GPU memory; try a smaller --max-len/--batch-size or --dtype bf16`;
    console.error(`wgpu-char: ${gpu.lostReason}`);
  });
  device.addEventListener('uncapturederror', (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    console.error(`wgpu-char: uncaptured WebGPU error: ${err.message}`);
  });
  return gpu;
}

/** One line for logs: what we run on. */
export function describeGpu(gpu: Gpu): string {
  const r = gpu.report;
  return `${r.description} (${r.vendor}, ${r.architecture}${r.isSoftware && r.architecture !== 'software' ? ', software' : ''}, ${r.backend})`;
}

export function assertAlive(gpu: Gpu): void {
  if (gpu.lostReason) throw new Error(gpu.lostReason);
}
