/**
 * The `Gpu` the rest of the code runs on: a WebGPU device with its adapter's report, the binding
 * limit every buffer is split to fit, memory accounting, and where the kernels' WGSL comes from.
 * Nothing here is Node-specific: the same code runs on Dawn's node bindings (src/node/dawn.ts) and
 * on a browser's `navigator.gpu`.
 */
import { UserError } from '../errors.ts';

/** Where kernel sources come from: kernels/ on disk (src/node/kernel-files.ts) or a bundle in a browser. */
export interface KernelFiles {
  /** The text of `kernels/<relPath>` (relPath may start with `include/`). */
  read(relPath: string): string;
}

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
  /** The kernels' WGSL sources. */
  readonly kernels: KernelFiles;
  /** Bytes of GPU buffers we allocated and have not destroyed (WebGPU reports no memory use). */
  allocatedBytes: number;
  peakAllocatedBytes: number;
  /**
   * Waits for a promise that the GPU fulfils (onSubmittedWorkDone, mapAsync). Every such wait goes
   * through here, so a platform can choose how the CPU waits: see `GpuWait` and src/node/dawn.ts.
   */
  settle<T>(pending: Promise<T>): Promise<T>;
  /** How `settle` waits, for the reports. */
  readonly waitMode: string;
}

/**
 * A way to wait for GPU work: `name` for the reports, `settle` the waiting itself. The default
 * (`awaitGpu`) just awaits, which is right for a hardware GPU.
 */
export interface GpuWait {
  name: string;
  settle<T>(pending: Promise<T>): Promise<T>;
}

export const awaitGpu: GpuWait = { name: 'await', settle: (pending) => pending };

/**
 * Requests the adapter and a device with every limit and the features we use (a plain
 * requestDevice() gets the spec's low default limits: 128 MiB bindings, where GPUs offer 1 GiB+).
 * `backend` names the native API for the report (WebGPU adapters do not say which one they run on).
 */
export async function requestGpu(entry: GPU, opts: { backend: string; kernels: KernelFiles; wait?: (report: GpuReport) => GpuWait }): Promise<Gpu> {
  const adapter = await entry.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new UserError(
      'no WebGPU adapter found: run `npm run setup` (installs Mesa lavapipe on Debian when there is no GPU driver) or install your GPU\'s Vulkan/Metal/D3D12 driver',
    );
  }
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
    backend: opts.backend,
    isSoftware: info.architecture === 'software' || info.isFallbackAdapter === true,
    subgroupSize: info.subgroupMinSize ?? null,
    features: [...device.features].map(String).sort(),
    limits,
  };
  const wait = opts.wait?.(report) ?? awaitGpu;
  const gpu: Gpu = {
    device,
    adapter,
    report,
    maxBindingBytes: Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize),
    hasSubgroups: device.features.has('subgroups'),
    lostReason: null,
    kernels: opts.kernels,
    allocatedBytes: 0,
    peakAllocatedBytes: 0,
    settle: wait.settle,
    waitMode: wait.name,
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
