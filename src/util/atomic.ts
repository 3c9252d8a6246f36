/**
 * Writes that never leave a half-written file under the final name (temp file + fsync + rename),
 * durable log appends, and the one-line error of a full disk.
 *
 * Disk full (ENOSPC, or EDQUOT: over quota) becomes a `DiskFullError`, a UserError naming the file
 * being written and the space left on its file system, e.g.
 *   runs/a/checkpoint-6/optimizer.safetensors: disk full (3.0 MiB free)
 * Callers that write through other functions turn such errors into one with `asDiskFull`.
 */
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { formatBytes } from './bytes.ts';

/** Temp name next to `finalPath`, unique per process, so a crash never leaves a half-written file under the final name. */
export function tempPathFor(finalPath: string): string {
  return `${finalPath}.${process.pid}.tmp`;
}

/** Writes `data` to `finalPath` through a temp file + fsync + rename: readers see the old file or the whole new one. */
export function writeFileAtomic(finalPath: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(finalPath);
  try {
    writeFileSync(tmp, data);
    const fd = openSync(tmp, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, finalPath);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw asDiskFull(e, finalPath);
  }
}

/** Appends one line to a log file and fsyncs it, so a kill right after loses nothing that was reported done. */
export function appendLineDurable(filePath: string, line: string): void {
  try {
    const fd = openSync(filePath, 'a');
    try {
      writeSync(fd, line.endsWith('\n') ? line : line + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw asDiskFull(e, filePath);
  }
}

/** A write failed for want of space: `file` (the final name, never a temp file), the bytes still free (null: unknown). */
export class DiskFullError extends UserError {
  constructor(readonly file: string, readonly freeBytes: number | null, readonly note = '') {
    super(`${file}: disk full (${freeBytes === null ? 'free space unknown' : `${formatBytes(freeBytes)} free`})${note}`);
  }

  /** The same error with `; <note>` appended (once). */
  withNote(note: string): DiskFullError {
    return this.note ? this : new DiskFullError(this.file, this.freeBytes, `; ${note}`);
  }
}

/** Whether `e` is the error of a full disk (ENOSPC) or an exceeded quota (EDQUOT). */
export function isDiskFull(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * `e` as a DiskFullError naming `file` when it is a full disk's error (one already converted is
 * renamed to `file`, so a temp path never shows), else `e` unchanged. The free space is measured now.
 */
export function asDiskFull(e: unknown, file: string): unknown {
  if (!isDiskFull(e) && !(e instanceof DiskFullError)) return e;
  return new DiskFullError(file, freeBytesAt(file));
}

/** Bytes available to this user on the file system that holds `p` (or its nearest existing parent); null if unknown. */
export function freeBytesAt(p: string): number | null {
  let dir = path.resolve(p);
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}
