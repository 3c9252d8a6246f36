import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';

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
    throw e;
  }
}

/** Appends one line to a log file and fsyncs it, so a kill right after loses nothing that was reported done. */
export function appendLineDurable(filePath: string, line: string): void {
  const fd = openSync(filePath, 'a');
  try {
    writeSync(fd, line.endsWith('\n') ? line : line + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
