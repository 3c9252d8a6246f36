/** Facts about the machine a benchmark ran on, for its report. */
import { realpathSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';

/** Which BLAS Debian's torch loads (libblas.so.3 is an alternatives link). */
export function debianBlas(): string {
  try {
    return realpathSync('/usr/lib/x86_64-linux-gnu/libblas.so.3').includes('openblas') ? 'OpenBLAS (libopenblas0-pthread)' : 'reference BLAS';
  } catch {
    return 'unknown BLAS';
  }
}

/** CPU model × cores, memory, OS and Node, in one line. */
export function describeMachine(): string {
  const cpu = cpus()[0]?.model?.trim() ?? 'unknown CPU';
  return `CPU ${cpu} × ${cpus().length}; ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; ${platform()} ${release()}; Node ${process.version}`;
}
