import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, fstatSync, ftruncateSync } from 'node:fs';
import { appendLineDurable } from '../../util/atomic.ts';
import type { Usage } from './client.ts';

/**
 * The request log of a stage: real JSONL, one object per line, appended and fsynced as each event
 * happens, keyed by a stable item id. It is the only record of what the API returned; every other
 * file of the stage is derived from it and rewritten whole.
 *
 * Events: `ok` (the request and its reply), `retry` (an attempt that failed and will be retried),
 * `failed` (the item gave up after its last attempt). An item is done when it has an `ok` line
 * whose `prompt_sha` matches the prompt it would be sent now; a re-run skips done items and retries
 * the rest, and readers use the FIRST matching `ok` line, so a duplicate can never reach the output.
 */

export const LOG_FORMAT_VERSION = 1;

export type OkRecord = {
  v: number;
  stage: string;
  id: string;
  event: 'ok';
  attempt: number;
  prompt_sha: string;
  model: string;
  prompt: string;
  completion: string;
  finish_reason: string;
  usage: Usage;
  time: string;
};
export type RetryRecord = { v: number; stage: string; id: string; event: 'retry'; attempt: number; reason: string; delay_ms: number; time: string };
export type FailedRecord = { v: number; stage: string; id: string; event: 'failed'; attempt: number; prompt_sha: string; reason: string; time: string };
export type LogRecord = OkRecord | RetryRecord | FailedRecord;

export function promptSha(prompt: string): string {
  return createHash('sha256').update(prompt, 'utf8').digest('hex').slice(0, 16);
}

/**
 * Cuts an unfinished last line (the process was killed in the middle of a write) so the next
 * append starts on a fresh line. What was cut was never reported done, so it is simply redone.
 */
export function repairLogTail(path: string): boolean {
  if (!existsSync(path)) return false;
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    if (last[0] === 0x0a) return false;
    const text = readFileSync(path);
    const keep = text.lastIndexOf(0x0a) + 1;
    ftruncateSync(fd, keep);
    return true;
  } finally {
    closeSync(fd);
  }
}

export type LogContents = { records: LogRecord[]; unreadableLines: number };

/** Reads a log, skipping (and counting) lines that are not a JSON object with an id and event. */
export function readLog(path: string): LogContents {
  if (!existsSync(path)) return { records: [], unreadableLines: 0 };
  const records: LogRecord[] = [];
  let unreadableLines = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const value = JSON.parse(line) as LogRecord;
      if (typeof value === 'object' && value !== null && typeof value.id === 'string' && typeof value.event === 'string') records.push(value);
      else unreadableLines++;
    } catch {
      unreadableLines++;
    }
  }
  return { records, unreadableLines };
}

/** The first `ok` record per item id whose prompt is still the one we would send. */
export function doneRecords(records: LogRecord[], currentSha: Map<string, string>): Map<string, OkRecord> {
  const done = new Map<string, OkRecord>();
  for (const record of records) {
    if (record.event !== 'ok' || done.has(record.id)) continue;
    if (currentSha.get(record.id) === record.prompt_sha) done.set(record.id, record);
  }
  return done;
}

export function appendRecord(path: string, record: LogRecord): void {
  appendLineDurable(path, JSON.stringify(record));
}
