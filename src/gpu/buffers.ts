/**
 * GPU buffers: creation with memory accounting, upload, readback.
 *
 * WebGPU has no API for memory use, so `Gpu.allocatedBytes` counts what we created (peak included,
 * for the checkpointing report). Out-of-memory surfaces either as an `out-of-memory` error scope
 * (checked in `createStorage`) or later as device loss (see device.ts).
 */
import { UserError } from '../errors.ts';
import { assertAlive, type Gpu } from './device.ts';

export interface GpuBuffer {
  readonly buffer: GPUBuffer;
  readonly byteLength: number;
  readonly label: string;
  destroy(): void;
}

/** WebGPU buffer sizes must be multiples of 4; we round every size up to 16 (offset alignment). */
function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** The bytes `createStorage` allocates for a request of `byteLength` (what the memory planner counts). */
export function storageBytes(byteLength: number): number {
  return Math.max(16, roundUp(byteLength, 16));
}

/**
 * A storage buffer of at least `byteLength` bytes (zero-initialised, as WebGPU guarantees).
 * Throws a clear error when it exceeds what one binding may hold: callers split big tensors.
 */
export function createStorage(gpu: Gpu, label: string, byteLength: number, usage: GPUBufferUsageFlags = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST): GpuBuffer {
  assertAlive(gpu);
  const size = storageBytes(byteLength);
  if (size > gpu.maxBindingBytes) {
    throw new Error(
      `buffer '${label}' needs ${size} bytes but this device binds at most ${gpu.maxBindingBytes} (maxStorageBufferBindingSize): split it`,
    );
  }
  const buffer = gpu.device.createBuffer({ label, size, usage });
  gpu.allocatedBytes += size;
  gpu.peakAllocatedBytes = Math.max(gpu.peakAllocatedBytes, gpu.allocatedBytes);
  let destroyed = false;
  return {
    buffer,
    byteLength: size,
    label,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      gpu.allocatedBytes -= size;
      buffer.destroy();
    },
  };
}

/** Creates a storage buffer holding `data` (a typed array; any element type). */
export function createStorageFrom(gpu: Gpu, label: string, data: ArrayBufferView): GpuBuffer {
  const buf = createStorage(gpu, label, data.byteLength);
  upload(gpu, buf, data);
  return buf;
}

/** Writes `data` at `byteOffset`. Pads to a multiple of 4 bytes as writeBuffer requires. */
export function upload(gpu: Gpu, dst: GpuBuffer, data: ArrayBufferView, byteOffset = 0): void {
  assertAlive(gpu);
  let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 !== 0) {
    const padded = new Uint8Array(roundUp(bytes.byteLength, 4));
    padded.set(bytes);
    bytes = padded;
  }
  if (byteOffset + bytes.byteLength > dst.byteLength) {
    throw new Error(`upload of ${bytes.byteLength} bytes at ${byteOffset} overflows buffer '${dst.label}' (${dst.byteLength} bytes)`);
  }
  gpu.device.queue.writeBuffer(dst.buffer, byteOffset, bytes as Uint8Array<ArrayBuffer>);
}

/**
 * Copies `byteLength` bytes from `src` at `byteOffset` back to the CPU. The staging buffer is
 * destroyed in `finally`. Costs milliseconds (mapAsync): read back only what is logged or sampled.
 */
export async function readback(gpu: Gpu, src: GpuBuffer, byteOffset = 0, byteLength = src.byteLength - byteOffset): Promise<ArrayBuffer> {
  assertAlive(gpu);
  const size = roundUp(byteLength, 4);
  const staging = gpu.device.createBuffer({ label: `readback:${src.label}`, size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const enc = gpu.device.createCommandEncoder({ label: `readback:${src.label}` });
    enc.copyBufferToBuffer(src.buffer, byteOffset, staging, 0, size);
    gpu.device.queue.submit([enc.finish()]);
    try {
      await gpu.settle(staging.mapAsync(GPUMapMode.READ));
    } catch (e) {
      assertAlive(gpu);
      throw e;
    }
    return staging.getMappedRange().slice(0, byteLength);
  } finally {
    staging.destroy();
  }
}

export async function readF32(gpu: Gpu, src: GpuBuffer, count?: number, elemOffset = 0): Promise<Float32Array> {
  const n = count ?? (src.byteLength / 4 - elemOffset);
  return new Float32Array(await readback(gpu, src, elemOffset * 4, n * 4));
}

/**
 * Runs `fn` (sync or async) inside out-of-memory + validation error scopes and turns a captured
 * error into a clear one; `hint` says what the user can change.
 */
export async function withGpuErrorCheck<T>(gpu: Gpu, what: string, fn: () => T | Promise<T>, hint = ''): Promise<T> {
  gpu.device.pushErrorScope('out-of-memory');
  gpu.device.pushErrorScope('validation');
  let result: T;
  try {
    result = await fn();
  } finally {
    const validation = await gpu.device.popErrorScope();
    const oom = await gpu.device.popErrorScope();
    if (oom) throw new UserError(`${what}: out of GPU memory (${oom.message}); ${gpu.allocatedBytes} bytes allocated by wgpu-char${hint ? `; ${hint}` : ''}`);
    if (validation) throw new Error(`${what}: WebGPU validation error: ${validation.message}`);
  }
  return result;
}

/**
 * A persistent MAP_READ buffer for reading the same small result every step (sampled token
 * probabilities, the loss): the decode loop allocates no GPU buffer per token.
 * Usage: `reader.copyFrom(rec, src, offset, bytes)` inside the step's encoder, submit, then
 * `await reader.read()`.
 */
export class StagingReader {
  private readonly staging: GPUBuffer;
  private pendingBytes = 0;

  constructor(private readonly gpu: Gpu, readonly capacityBytes: number, label = 'staging') {
    this.staging = gpu.device.createBuffer({ label, size: roundUp(capacityBytes, 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  copyFrom(encode: { withEncoder(fn: (e: GPUCommandEncoder) => void): void }, src: GpuBuffer, byteOffset: number, byteLength: number): void {
    if (byteLength > this.capacityBytes) throw new Error(`StagingReader: ${byteLength} bytes > capacity ${this.capacityBytes}`);
    this.pendingBytes = roundUp(byteLength, 4);
    encode.withEncoder((e) => e.copyBufferToBuffer(src.buffer, byteOffset, this.staging, 0, this.pendingBytes));
  }

  /** Maps, copies out and unmaps; call after the encoder with the copy was submitted. */
  async read(): Promise<ArrayBuffer> {
    assertAlive(this.gpu);
    try {
      await this.gpu.settle(this.staging.mapAsync(GPUMapMode.READ, 0, this.pendingBytes));
    } catch (e) {
      assertAlive(this.gpu);
      throw e;
    }
    const out = this.staging.getMappedRange(0, this.pendingBytes).slice(0);
    this.staging.unmap();
    return out;
  }

  destroy(): void {
    this.staging.destroy();
  }
}
