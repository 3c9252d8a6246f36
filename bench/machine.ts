/** Facts about the machine a benchmark ran on, for its report. */
import { realpathSync } from 'node:fs';

/** Which BLAS Debian's torch loads (libblas.so.3 is an alternatives link). */
export function debianBlas(): string {
  try {
    return realpathSync('/usr/lib/x86_64-linux-gnu/libblas.so.3').includes('openblas') ? 'OpenBLAS (libopenblas0-pthread)' : 'reference BLAS';
  } catch {
    return 'unknown BLAS';
  }
}
