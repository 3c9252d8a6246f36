/**
 * One run per folder at a time: a PID lock file, used by the data pipeline (OUT/.data.lock) and by
 * `train` (OUT/.train.lock). Two processes writing into one folder would interleave their logs and
 * overwrite each other's files.
 *
 * The lock file holds the owner's pid, created with O_EXCL. A lock whose pid no longer runs (the
 * owner was killed) is stale: it is taken over, and `onTakeover` is told so. A lock held by this
 * very process (a second run started in-process) is refused like any other live one.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';

/** Resolved paths of the locks this process holds now. */
const held = new Set<string>();

export interface LockOptions {
  /** Called once when a stale lock (of `pid`, no longer running) is taken over. */
  onTakeover?: (pid: number) => void;
}

/**
 * Takes the lock at `lockPath` (its folder must exist) or throws a one-line UserError naming the
 * folder and the owning pid. Returns the release function (idempotent; removes the file only while
 * it still holds this process's pid).
 */
export function acquireLock(lockPath: string, opts: LockOptions = {}): () => void {
  const mine = String(process.pid);
  const key = path.resolve(lockPath);
  const dir = path.dirname(lockPath), name = path.basename(lockPath);
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(lockPath, mine, { flag: 'wx' });
      held.add(key);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        held.delete(key);
        try {
          if (readFileSync(lockPath, 'utf8') === mine) rmSync(lockPath, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      let text: string;
      try {
        text = readFileSync(lockPath, 'utf8');
      } catch {
        continue; // released in between: try again
      }
      const holder = Number(text.trim());
      const live = Number.isInteger(holder) && holder > 0 && (holder === process.pid ? held.has(key) : isAlive(holder));
      if (live) throw new UserError(`${dir}: another run (pid ${holder}) is writing to this folder (lock file ${name}); wait for it or stop it`);
      rmSync(lockPath, { force: true });
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid) opts.onTakeover?.(holder);
    }
  }
  throw new UserError(`${lockPath}: could not take the lock`);
}

/**
 * Holds the lock for as long as the process lives or until the returned release is called: a
 * process.exit() (e.g. a second Ctrl-C) skips `finally` blocks but still runs 'exit' listeners.
 */
export function acquireLockUntilExit(lockPath: string, opts: LockOptions = {}): () => void {
  const release = acquireLock(lockPath, opts);
  process.once('exit', release);
  return () => {
    process.off('exit', release);
    release();
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
