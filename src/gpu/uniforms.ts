/**
 * The per-submit uniform arena: every dispatch gets its own slice of uniform memory for its Params,
 * so one Op may be recorded any number of times in one submit with different values (the logits
 * chunks of a step, the same matmul at several offsets, AdamW run twice).
 *
 * Memory: a list of pages (GPU uniform buffers of PAGE_BYTES each) owned by the device and reused
 * by every submit. A Recorder stages its Params on the CPU in a `UniformWriter`, slot after slot
 * (each slot aligned to minUniformBufferOffsetAlignment), and binds each dispatch's slot (the op's
 * bind group for that slot, src/gpu/kernels.ts). At submit the writer uploads the pages it used with
 * one `queue.writeBuffer` each, right before `queue.submit`. Queue writes and submits run in queue
 * order, so the next submit may rewrite the same pages: the GPU work of this one has read its values
 * by then.
 */
import type { Gpu } from './device.ts';

/** Bytes per page: the largest uniform binding WebGPU guarantees (maxUniformBufferBindingSize ≥ 64 KiB). */
export const PAGE_BYTES = 65536;

export type ParamLayout = string;

/** The pages of one device; each Op creates one bind group per page it is recorded in. */
export class UniformPages {
  private readonly pages: GPUBuffer[] = [];
  /**
   * CPU staging pages no writer holds. A 64 KiB ArrayBuffer per submit would be garbage at every
   * decode step, and V8 collects eagerly on external memory (measured: a quarter of decode time).
   */
  private readonly freeStaging: ArrayBuffer[] = [];
  readonly align: number;

  constructor(private readonly device: GPUDevice) {
    this.align = device.limits.minUniformBufferOffsetAlignment;
  }

  page(i: number): GPUBuffer {
    while (this.pages.length <= i) {
      this.pages.push(this.device.createBuffer({ label: `uniforms[${this.pages.length}]`, size: PAGE_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }));
    }
    return this.pages[i];
  }

  takeStaging(): ArrayBuffer {
    return this.freeStaging.pop() ?? new ArrayBuffer(PAGE_BYTES);
  }

  returnStaging(pages: ArrayBuffer[]): void {
    this.freeStaging.push(...pages);
  }
}

const pagesOfDevice = new WeakMap<GPUDevice, UniformPages>();

export function uniformPages(gpu: Gpu): UniformPages {
  let p = pagesOfDevice.get(gpu.device);
  if (!p) {
    p = new UniformPages(gpu.device);
    pagesOfDevice.set(gpu.device, p);
  }
  return p;
}

/** Byte size of a Params struct of this layout: 4 bytes a field, rounded up to 16 (uniform struct alignment). */
export function paramBytes(layout: ParamLayout): number {
  return Math.max(16, Math.ceil((layout.length * 4) / 16) * 16);
}

/** A slot: which page, at which byte offset. */
export interface UniformSlot {
  page: number;
  offset: number;
}

/** One submit's Params, staged on the CPU slot by slot and uploaded by `flush` before the submit. */
export class UniformWriter {
  private readonly staged: ArrayBuffer[] = [];
  private page = 0;
  private used = 0;

  constructor(private readonly gpu: Gpu, private readonly pages: UniformPages = uniformPages(gpu)) {}

  /** Encodes `values` in `layout` ('u' u32, 'i' i32, 'f' f32 per 4-byte field) into a fresh slot. */
  write(layout: ParamLayout, values: readonly number[], what: string): UniformSlot {
    if (values.length !== layout.length) throw new Error(`${what}: ${values.length} params given, layout '${layout}' wants ${layout.length}`);
    const bytes = paramBytes(layout);
    let offset = Math.ceil(this.used / this.pages.align) * this.pages.align;
    if (offset + bytes > PAGE_BYTES) {
      this.page++;
      offset = 0;
    }
    this.staged[this.page] ??= this.pages.takeStaging();
    const view = new DataView(this.staged[this.page], offset, bytes);
    for (let i = 0; i < values.length; i++) {
      const t = layout[i];
      if (t === 'u') view.setUint32(i * 4, values[i], true);
      else if (t === 'i') view.setInt32(i * 4, values[i], true);
      else if (t === 'f') view.setFloat32(i * 4, values[i], true);
      else throw new Error(`${what}: unknown field type '${t}' in layout '${layout}'`);
    }
    this.used = offset + bytes;
    return { page: this.page, offset };
  }

  pageBuffer(i: number): GPUBuffer {
    return this.pages.page(i);
  }

  /** Uploads the staged pages (only the bytes used; writeBuffer copies them) and hands the staging pages back. Call right before the submit. */
  flush(): void {
    this.staged.forEach((data, i) => {
      const length = i === this.page ? Math.ceil(this.used / 4) * 4 : PAGE_BYTES;
      if (length > 0) this.gpu.device.queue.writeBuffer(this.pages.page(i), 0, data, 0, length);
    });
    this.pages.returnStaging(this.staged.splice(0));
  }
}
