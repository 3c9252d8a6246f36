/**
 * Kernel loading, the pipeline cache, and the one dispatch path.
 *
 * - Kernels live in `kernels/<op>_<fwd|bwd>.wgsl`, one entry point `main` each. Shared snippets
 *   live in `kernels/include/` and are pulled in by a comment line `//#include "name.wgsl"` (a
 *   comment, so every kernel file stays lexically valid WGSL). This is the only include mechanism.
 * - Pipelines are cached by file + override constants. Compilation happens inside a validation
 *   error scope; errors are reported as `kernels/file.wgsl:line:col: message` using a line map
 *   through the includes.
 * - An `Op` is a kernel bound to its storage buffers once (bind groups made at build time, never
 *   per call). `Recorder` encodes many ops into one command encoder / compute pass, so a whole
 *   forward or training step is one submit; each dispatch carries its own Params, written into the
 *   submit's uniform arena (src/gpu/uniforms.ts), so an op can be recorded any number of times.
 */
import { assertAlive, type Gpu, type KernelFiles } from './device.ts';
import type { GpuBuffer } from './buffers.ts';
import { PAGE_BYTES, paramBytes, UniformWriter, type ParamLayout, type UniformSlot } from './uniforms.ts';

const INCLUDE_RE = /^\s*\/\/#include\s+"([^"]+)"\s*$/;

export interface KernelSource {
  code: string;
  /** For output line i (0-based): the file and 1-based line it came from. */
  lineMap: { file: string; line: number }[];
}

/** Joins a relative path POSIX-style, resolving `..` (no Node `path` here: this runs in a browser too). */
function joinPath(dir: string, rel: string): string {
  const parts: string[] = [];
  for (const p of `${dir}/${rel}`.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..' && parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
    else parts.push(p);
  }
  return parts.join('/');
}

/** Reads `kernels/<file>` and expands `//#include "x.wgsl"` lines from `kernels/include/` (each once). */
export function loadKernelSource(file: string, files: KernelFiles): KernelSource {
  const out: string[] = [];
  const lineMap: { file: string; line: number }[] = [];
  const included = new Set<string>();
  const expand = (rel: string, display: string) => {
    const text = files.read(rel);
    text.split('\n').forEach((line, i) => {
      const m = INCLUDE_RE.exec(line);
      if (m) {
        const inc = joinPath('include', m[1]);
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

/** A compiled kernel: its pipeline and its bind group layout. */
export interface Kernel {
  pipeline: GPUComputePipeline;
  bindGroupLayout: GPUBindGroupLayout;
}

const kernelCache = new Map<string, Promise<Kernel>>();

function constantsKey(constants: OverrideConstants): string {
  return Object.keys(constants)
    .sort()
    .map((k) => `${k}=${Number(constants[k])}`)
    .join(',');
}

/** The kernel `kernels/<file>` with these override constants, compiled once per process. */
export function getKernel(gpu: Gpu, file: string, constants: OverrideConstants = {}): Promise<Kernel> {
  const key = `${file}|${constantsKey(constants)}`;
  let p = kernelCache.get(key);
  if (!p) {
    p = compileKernel(gpu, file, constants);
    kernelCache.set(key, p);
    p.catch(() => kernelCache.delete(key));
  }
  return p;
}

/** The compute pipeline of `kernels/<file>` with these override constants (cached). */
export async function getPipeline(gpu: Gpu, file: string, constants: OverrideConstants = {}): Promise<GPUComputePipeline> {
  return (await getKernel(gpu, file, constants)).pipeline;
}

async function compileKernel(gpu: Gpu, file: string, constants: OverrideConstants): Promise<Kernel> {
  assertAlive(gpu);
  const src = loadKernelSource(file, gpu.kernels);
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
  let bindGroupLayout: GPUBindGroupLayout;
  try {
    pipeline = await device.createComputePipelineAsync({
      label: `${file} ${constantsKey(constants)}`,
      layout: 'auto',
      compute: { module, entryPoint: 'main', constants: numericConstants },
    });
    bindGroupLayout = pipeline.getBindGroupLayout(0);
  } catch (e) {
    await device.popErrorScope();
    throw new Error(`kernels/${file}: pipeline creation failed (${constantsKey(constants)}): ${(e as Error).message}`);
  }
  const err = await device.popErrorScope();
  if (err) throw new Error(`kernels/${file}: pipeline validation failed (${constantsKey(constants)}): ${err.message}`);
  return { pipeline, bindGroupLayout };
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
export type { ParamLayout } from './uniforms.ts';

export interface OpSpec {
  kernel: string;
  constants?: OverrideConstants;
  /** Storage bindings, bound at @binding(1), (2), ... in this order (binding 0 is the Params uniform). */
  bindings: Binding[];
  /** The Params layout; every kernel has a Params uniform at @binding(0). */
  params: ParamLayout;
  label?: string;
}

/**
 * A kernel bound to its storage buffers once. Its Params are not part of it: each dispatch passes
 * its own values (`Recorder.dispatch`), which land in their own slot of the submit's uniform arena
 * (src/gpu/uniforms.ts). The op keeps one bind group per arena slot it has been recorded in, made
 * the first time: a forward or a step records the same dispatches in the same order every time, so
 * from the second time on every bind group is a cache hit.
 *
 * Why not one bind group with a dynamic offset: on lavapipe (Mesa 25, Dawn) dynamic uniform offsets
 * made greedy decode of weights/tiny 27% slower (158 vs 215 tokens/s, medians of interleaved runs).
 */
export class Op {
  private readonly bindGroups = new Map<number, GPUBindGroup>();
  private constructor(
    private readonly gpu: Gpu,
    readonly label: string,
    readonly pipeline: GPUComputePipeline,
    private readonly layout: GPUBindGroupLayout,
    private readonly storage: GPUBindGroupEntry[],
    readonly paramLayout: ParamLayout,
  ) {}

  static async create(gpu: Gpu, spec: OpSpec): Promise<Op> {
    const { pipeline, bindGroupLayout } = await getKernel(gpu, spec.kernel, spec.constants ?? {});
    const label = spec.label ?? spec.kernel;
    const storage: GPUBindGroupEntry[] = spec.bindings.map((b, i) => ({
      binding: i + 1,
      resource: 'buf' in b ? { buffer: b.buf.buffer, offset: b.offset, size: b.size } : { buffer: b.buffer },
    }));
    const op = new Op(gpu, label, pipeline, bindGroupLayout, storage, spec.params);
    // Validate the bindings now (page 0), where the error can name the op.
    gpu.device.pushErrorScope('validation');
    op.bindGroupFor(new UniformWriter(gpu), { page: 0, offset: 0 });
    const err = await gpu.device.popErrorScope();
    if (err) throw new Error(`${label} (kernels/${spec.kernel}): bind group invalid: ${err.message}`);
    return op;
  }

  /** The bind group of arena page `page`. */
  bindGroupFor(uniforms: UniformWriter, slot: UniformSlot): GPUBindGroup {
    const key = slot.page * PAGE_BYTES + slot.offset;
    let bg = this.bindGroups.get(key);
    if (!bg) {
      const params: GPUBindGroupEntry = { binding: 0, resource: { buffer: uniforms.pageBuffer(slot.page), offset: slot.offset, size: paramBytes(this.paramLayout) } };
      bg = this.gpu.device.createBindGroup({ label: `${this.label}@uniforms[${slot.page}]+${slot.offset}`, layout: this.layout, entries: [params, ...this.storage] });
      this.bindGroups.set(key, bg);
    }
    return bg;
  }
}

/**
 * Encodes ops into one command encoder (one compute pass between copies) and submits once.
 * Per-dispatch submits cost ~36 µs each and idle the GPU. Each dispatch's Params go into this
 * submit's uniform arena, uploaded by `submit` just before the command buffer.
 */
export class Recorder {
  readonly encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | null = null;
  private readonly uniforms: UniformWriter;
  private submitted = false;

  constructor(private readonly gpu: Gpu, label = 'step') {
    assertAlive(gpu);
    this.encoder = gpu.device.createCommandEncoder({ label });
    this.uniforms = new UniformWriter(gpu);
  }

  /** Dispatches `op` over (x, y, z) workgroups with these Params values (in the op's layout). */
  dispatch(op: Op, params: readonly number[], x: number, y = 1, z = 1): void {
    const max = this.gpu.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) throw new Error(`${op.label}: dispatch (${x}, ${y}, ${z}) exceeds ${max} workgroups per dimension`);
    if (x === 0 || y === 0 || z === 0) return;
    if (this.submitted) throw new Error(`${op.label}: recorded after submit`);
    const slot = this.uniforms.write(op.paramLayout, params, op.label);
    this.pass ??= this.encoder.beginComputePass();
    this.pass.setPipeline(op.pipeline);
    this.pass.setBindGroup(0, op.bindGroupFor(this.uniforms, slot));
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

  /** Uploads this submit's Params, then submits the command buffer (queue order keeps them together). */
  submit(): void {
    this.endPass();
    this.submitted = true;
    this.uniforms.flush();
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
