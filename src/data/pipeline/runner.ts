import { UserError } from '../../errors.ts';
import type { CompletionClient, Usage } from './client.ts';
import { appendRecord, doneRecords, LOG_FORMAT_VERSION, promptSha, readLog, repairLogTail, type OkRecord } from './log.ts';
import { runPool } from './pool.ts';
import { Progress, type ProgressStream } from './progress.ts';

/** One request of a stage: a stable id (the resume key) and the prompt to send. */
export type WorkItem = { id: string; prompt: string };

export type StageSummary = {
  stage: string;
  total: number;
  /** Completed in this run. */
  done: number;
  /** Gave up in this run after the last attempt. */
  failed: number;
  /** Already done in an earlier run, not sent again. */
  skipped: number;
  /** Tokens reported by the server for this run's successful requests. */
  usage: Usage;
  /** Reasons of this run's failures, with their item ids. */
  failures: { id: string; reason: string }[];
  /** Retried attempts in this run, by reason (429, timeout, ...). */
  retries: Map<string, number>;
  /** Log lines that could not be read (e.g. written by a foreign tool); reported, never fatal. */
  unreadableLogLines: number;
};

export type StageRunOptions = {
  stage: string;
  items: WorkItem[];
  logPath: string;
  client: CompletionClient;
  concurrency: number;
  progressStream?: ProgressStream;
  progressIntervalMs?: number;
};

/** Items in a row failing to connect after all their attempts, before the run gives up on the endpoint. */
export const UNREACHABLE_LIMIT = 3;

/** Groups a reason like "429 rate limited (Retry-After 2s)" under "429 rate limited" for the summary. */
function reasonKey(reason: string): string {
  return reason.replace(/\s*\(.*\)$/, '').replace(/:.*$/, '');
}

/**
 * Sends every item that the log does not already hold a matching reply for, appending each
 * attempt's outcome to the log as it happens. Returns the summary and the `ok` record of every
 * item that is done now (from earlier runs or this one).
 */
export async function runStage(opts: StageRunOptions): Promise<{ summary: StageSummary; results: Map<string, OkRecord> }> {
  const ids = new Set<string>();
  for (const item of opts.items) {
    if (ids.has(item.id)) throw new Error(`${opts.stage}: duplicate item id ${item.id}`);
    ids.add(item.id);
  }
  repairLogTail(opts.logPath);
  const { records, unreadableLines } = readLog(opts.logPath);
  const shaById = new Map(opts.items.map((item) => [item.id, promptSha(item.prompt)]));
  const results = doneRecords(records, shaById);
  const pending = opts.items.filter((item) => !results.has(item.id));

  const summary: StageSummary = {
    stage: opts.stage,
    total: opts.items.length,
    done: 0,
    failed: 0,
    skipped: opts.items.length - pending.length,
    usage: { prompt_tokens: 0, completion_tokens: 0 },
    failures: [],
    retries: new Map(),
    unreadableLogLines: unreadableLines,
  };
  const progress = new Progress(opts.stage, pending.length, opts.progressStream, opts.progressIntervalMs, summary.skipped);
  let fatal: string | undefined;
  // Items in a row that used up all their attempts on connection errors: an endpoint that is down
  // would otherwise cost every item its full backoff before the run could end.
  let unreachableInARow = 0;
  const settings = opts.client.settings;

  await runPool(
    pending.length,
    opts.concurrency,
    async (index) => {
      const item = pending[index]!;
      const sha = shaById.get(item.id)!;
      const outcome = await opts.client.complete(item.prompt, (e) => {
        summary.retries.set(reasonKey(e.reason), (summary.retries.get(reasonKey(e.reason)) ?? 0) + 1);
        appendRecord(opts.logPath, { v: LOG_FORMAT_VERSION, stage: opts.stage, id: item.id, event: 'retry', attempt: e.attempt, reason: e.reason, delay_ms: e.delayMs, time: new Date().toISOString() });
      });
      if (outcome.ok) {
        const record: OkRecord = {
          v: LOG_FORMAT_VERSION,
          stage: opts.stage,
          id: item.id,
          event: 'ok',
          attempt: outcome.attempts,
          prompt_sha: sha,
          model: settings.model,
          prompt: item.prompt,
          completion: outcome.text,
          finish_reason: outcome.finishReason,
          usage: outcome.usage,
          time: new Date().toISOString(),
        };
        appendRecord(opts.logPath, record);
        results.set(item.id, record);
        unreachableInARow = 0;
        summary.done++;
        summary.usage.prompt_tokens += outcome.usage.prompt_tokens;
        summary.usage.completion_tokens += outcome.usage.completion_tokens;
        progress.tick('done');
      } else {
        appendRecord(opts.logPath, { v: LOG_FORMAT_VERSION, stage: opts.stage, id: item.id, event: 'failed', attempt: outcome.attempts, prompt_sha: sha, reason: outcome.reason, time: new Date().toISOString() });
        summary.failed++;
        summary.failures.push({ id: item.id, reason: outcome.reason });
        if (outcome.fatal && fatal === undefined) fatal = `${settings.baseURL} (model ${settings.model}) refused the request: ${outcome.reason}; stopped (check --base-url, --model and the API key)`;
        unreachableInARow = outcome.reason.startsWith('connection error') ? unreachableInARow + 1 : 0;
        if (unreachableInARow >= UNREACHABLE_LIMIT && fatal === undefined) {
          fatal = `cannot reach ${settings.baseURL}: ${outcome.reason}; stopped after ${UNREACHABLE_LIMIT} items in a row failed to connect (is the server running? check --base-url)`;
        }
        progress.tick('failed');
      }
    },
    () => fatal !== undefined,
  );
  progress.finish();
  if (fatal !== undefined) {
    throw new UserError(`${opts.stage}: ${fatal}`);
  }
  return { summary, results };
}
