/**
 * Kernel loading, the pipeline cache, and the one dispatch path.
 *
 * - Kernels live in `kernels/<op>_<fwd|bwd>.wgsl`, one entry point `main` each. Shared snippets
 *   live in `kernels/include/` and are pulled in by a comment line `//#include "name.wgsl"` (a
 *   comment, so every kernel file stays lexically valid WGSL). This is the only include mechanism.
 * - Pipelines are cached by file + override constants. Compilation happens inside a validation
 *   error scope; errors are reported as `kernels/file.wgsl:line:col: message` using a line map
 *   through the includes.
 * - An `Op` is a kernel bound to its buffers once (bind group + uniform buffer made at build time,
 *   never per call). `Recorder` encodes many ops into one command encoder / compute pass, so a
 *   whole forward or training step is one submit.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertAlive, type Gpu } from './device.ts';
import type { GpuBuffer } from './buffers.ts';

export const KERNEL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'kernels');
const INCLUDE_RE = /^\s*\/\/#include\s+"([^"]+)"\s*$/;

export interface KernelSource {
  code: string;
  /** For output line i (0-based): the file and 1-based line it came from. */
  lineMap: { file: string; line: number }[];
}

/** Reads `kernels/<file>` and expands `//#include "x.wgsl"` lines from `kernels/include/` (each once). */
export function loadKernelSource(file: string): KernelSource {
  const out: string[] = [];
  const lineMap: { file: string; line: number }[] = [];
  const included = new Set<string>();
  const expand = (rel: string, display: string) => {
    const text = readFileSync(path.join(KERNEL_DIR, rel), 'utf8');
    text.split('\n').forEach((line, i) => {
      const m = INCLUDE_RE.exec(line);
      if (m) {
        const inc = path.posix.join('include', m[1]);
        if (!included.has(inc)) {
          included.add(inc);
          expand(inc, `kernels/${inc}`);
        }
        out.push(`// (included ${m[1]})`);
      } else {
        out.push(line);
      }
      lineMap.push({ file: display, line: i + 1 });
    });
  };
  expand(file, `kernels/${file}`);
  return { code: out.join('\n'), lineMap };
}

export type OverrideConstants = Record<string, number | boolean>;

const pipelineCache = new Map<string, Promise<GPUComputePipeline>>();

function constantsKey(constants: OverrideConstants): string {
  return Object.keys(constants)
    .sort()
    .map((k) => `${k}=${Number(constants[k])}`)
    .join(',');
}

/** The compute pipeline of `kernels/<file>` with these override constants, compiled once per process. */
export function getPipeline(gpu: Gpu, file: string, constants: OverrideConstants = {}): Promise<GPUComputePipeline> {
  const key = `${file}|${constantsKey(constants)}`;
  let p = pipelineCache.get(key);
  if (!p) {
    p = compilePipeline(gpu, file, constants);
    pipelineCache.set(key, p);
    p.catch(() => pipelineCache.delete(key));
  }
  return p;
}

async function compilePipeline(gpu: Gpu, file: string, constants: OverrideConstants): Promise<GPUComputePipeline> {
  assertAlive(gpu);
  const src = loadKernelSource(file);
  const device = gpu.device;
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: file, code: src.code });
  const info = await module.getCompilationInfo();
  const messages = info.messages.filter((m) => m.type === 'error');
  if (messages.length > 0) {
    await device.popErrorScope();
    throw new Error(`WGSL compilation failed:\n${messages.map((m) => formatMessage(src, m)).join('\n')}`);
  }
  const numericConstants: Record<string, number> = {};
  for (const [k, v] of Object.entries(constants)) numericConstants[k] = Number(v);
  let pipeline: GPUComputePipeline;
  try {
    pipeline = await device.createComputePipelineAsync({
      label: `${file} ${constantsKey(constants)}`,
      layout: 'auto',
      compute: { module, entryPoint: 'main', constants: numericConstants },
    });
  } catch (e) {
    await device.popErrorScope();
    throw new Error(`kernels/${file}: pipeline creation failed (${constantsKey(constants)}): ${(e as Error).message}`);
  }
  const err = await device.popErrorScope();
  if (err) throw new Error(`kernels/${file}: pipeline validation failed (${constantsKey(constants)}): ${err.message}`);
  return pipeline;
}

function formatMessage(src: KernelSource, m: GPUCompilationMessage): string {
  const where = src.lineMap[m.lineNum - 1];
  const loc = where ? `${where.file}:${where.line}:${m.linePos}` : `(generated):${m.lineNum}:${m.linePos}`;
  const lineText = src.code.split('\n')[m.lineNum - 1] ?? '';
  return `${loc}: ${m.message}\n    ${lineText.trim()}`;
}

/** A buffer bound whole, or a byte range of it. */
export type Binding = GpuBuffer | { buf: GpuBuffer; offset: number; size: number };

/**
 * The field types of a kernel's uniform `Params` struct, one letter per 4-byte field:
 * 'u' u32, 'i' i32, 'f' f32. The WGSL struct must declare the fields in the same order.
 */
export type ParamLayout = string;

export interface OpSpec {
  kernel: string;
  constants?: OverrideConstants;
  /** Storage bindings, bound at @binding(1), (2), ... in this order (binding 0 is the Params uniform when `params` is set). */
  bindings: Binding[];
  params?: ParamLayout;
  label?: string;
}

/** A kernel bound to its buffers: bind group and uniform buffer created once, at build time. */
export class Op {
  private lastParams: number[] | null = null;
  private constructor(
    private readonly gpu: Gpu,
    readonly label: string,
    readonly pipeline: GPUComputePipeline,
    readonly bindGroup: GPUBindGroup,
    private readonly paramLayout: ParamLayout,
    private readonly paramBuffer: GPUBuffer | null,
  ) {}

  static async create(gpu: Gpu, spec: OpSpec): Promise<Op> {
    const pipeline = await getPipeline(gpu, spec.kernel, spec.constants ?? {});
    const label = spec.label ?? spec.kernel;
    const entries: GPUBindGroupEntry[] = [];
    let paramBuffer: GPUBuffer | null = null;
    const layout = spec.params ?? '';
    if (layout.length > 0) {
      // Uniform buffers are at least 16 bytes and a multiple of 16 for struct alignment.
      paramBuffer = gpu.device.createBuffer({
        label: `${label}:params`,
        size: Math.max(16, Math.ceil((layout.length * 4) / 16) * 16),
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      entries.push({ binding: 0, resource: { buffer: paramBuffer } });
    }
    spec.bindings.forEach((b, i) => {
      const resource = 'buf' in b ? { buffer: b.buf.buffer, offset: b.offset, size: b.size } : { buffer: b.buffer };
      entries.push({ binding: i + 1, resource });
    });
    gpu.device.pushErrorScope('validation');
    const bindGroup = gpu.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries });
    const err = await gpu.device.popErrorScope();
    if (err) throw new Error(`${label} (kernels/${spec.kernel}): bind group invalid: ${err.message}`);
    return new Op(gpu, label, pipeline, bindGroup, layout, paramBuffer);
  }

  /** Sets the uniform Params (written to the GPU only when they change, e.g. the position in decode). */
  setParams(values: number[]): this {
    if (values.length !== this.paramLayout.length) {
      throw new Error(`${this.label}: ${values.length} params given, layout '${this.paramLayout}' wants ${this.paramLayout.length}`);
    }
    if (this.lastParams && this.lastParams.every((v, i) => v === values[i])) return this;
    const data = new ArrayBuffer(this.paramBuffer!.size);
    const view = new DataView(data);
    for (let i = 0; i < values.length; i++) {
      const t = this.paramLayout[i];
      if (t === 'u') view.setUint32(i * 4, values[i], true);
      else if (t === 'i') view.setInt32(i * 4, values[i], true);
      else view.setFloat32(i * 4, values[i], true);
    }
    this.gpu.device.queue.writeBuffer(this.paramBuffer!, 0, data);
    this.lastParams = values.slice();
    return this;
  }
}

/**
 * Encodes ops into one command encoder (one compute pass between copies) and submits once.
 * Per-dispatch submits cost ~36 µs each and idle the GPU.
 */
export class Recorder {
  readonly encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | null = null;

  constructor(private readonly gpu: Gpu, label = 'step') {
    assertAlive(gpu);
    this.encoder = gpu.device.createCommandEncoder({ label });
  }

  dispatch(op: Op, x: number, y = 1, z = 1): void {
    const max = this.gpu.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) throw new Error(`${op.label}: dispatch (${x}, ${y}, ${z}) exceeds ${max} workgroups per dimension`);
    if (x === 0 || y === 0 || z === 0) return;
    this.pass ??= this.encoder.beginComputePass();
    this.pass.setPipeline(op.pipeline);
    this.pass.setBindGroup(0, op.bindGroup);
    this.pass.dispatchWorkgroups(x, y, z);
  }

  copy(src: GpuBuffer, srcOffset: number, dst: GpuBuffer, dstOffset: number, size: number): void {
    this.endPass();
    this.encoder.copyBufferToBuffer(src.buffer, srcOffset, dst.buffer, dstOffset, size);
  }

  /** Zero-fills a buffer (or a byte range of it). */
  clear(buf: GpuBuffer, offset = 0, size?: number): void {
    this.endPass();
    this.encoder.clearBuffer(buf.buffer, offset, size);
  }

  /** Runs `fn` with the raw encoder outside any compute pass (copies, clears of many buffers). */
  withEncoder(fn: (encoder: GPUCommandEncoder) => void): void {
    this.endPass();
    fn(this.encoder);
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  submit(): void {
    this.endPass();
    this.gpu.device.queue.submit([this.encoder.finish()]);
  }
}

/**
 * A 1-D count of workgroups spread over (x, y) so neither exceeds the per-dimension limit.
 * Kernels recover the linear index as `wg.x + wg.y * num_workgroups.x` and must bounds-check it.
 */
export function grid1d(workgroups: number, maxPerDim = 65535): [number, number] {
  if (workgroups <= maxPerDim) return [workgroups, 1];
  const y = Math.ceil(workgroups / maxPerDim);
  return [Math.ceil(workgroups / y), y];
}
