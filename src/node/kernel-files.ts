/** The kernels' WGSL sources read from this package's kernels/ directory (the Node side of `KernelFiles`). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KernelFiles } from '../gpu/device.ts';

export const KERNEL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'kernels');

export const nodeKernelFiles: KernelFiles = {
  read: (relPath) => readFileSync(path.join(KERNEL_DIR, relPath), 'utf8'),
};
