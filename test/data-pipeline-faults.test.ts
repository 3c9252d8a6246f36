/**
 * The pipeline against a local OpenAI-compatible server (real HTTP, the real `openai` client)
 * that injects faults: 429 with Retry-After, 500, a dropped connection, a reply slower than the
 * timeout, an empty reply, a malformed reply. The final files must equal a fault-free run's.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.ts';
import { backoffDelayMs, classifyError, DEFAULT_RETRY_POLICY, retryAfterMs } from '../src/data/pipeline/client.ts';
import { FAULT_KINDS, startMockServer, type FaultKind, type PromptKind } from '../src/data/pipeline/mock-server.ts';
import { readProfile } from '../src/data/pipeline/profile.ts';
import { Progress } from '../src/data/pipeline/progress.ts';
import { buildArgs, readFinalFiles, readJsonlFile, runCli, SHORT_PROFILE, transcripts } from './fixtures/data-pipeline/helpers.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wgpu-char-data-'));
  dirs.push(dir);
  return dir;
}

let reference: Record<string, string>;

beforeAll(async () => {
  const server = await startMockServer({ transcripts: transcripts() });
  try {
    const run = await runCli(buildArgs(tempDir(), server.url));
    expect(run.exitCode).toBe(0);
    reference = readFinalFiles(dirs[0]!);
  } finally {
    await server.close();
  }
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('fault injection', () => {
  it('the reference run is complete', () => {
    const prompted = reference['prompted_Beethoven.jsonl']!.trim().split('\n');
    // 6 scene replies x 3 scenes -> 18 experiences, plus 4 protective (one per paragraph).
    expect(prompted.length).toBe(22);
    expect(reference['scenes.jsonl']!.trim().split('\n').length).toBe(18);
  });

  it('every fault kind is retried or rejected, and the final files equal the fault-free run', async () => {
    // Per stage, the first distinct prompts get the fault kinds in turn (offsets make each stage
    // see a malformed reply); the first retry of the first prompt of each stage fails again with a 500.
    const offsets: Record<PromptKind, number> = { scenes: 2, dialogues: 0, protective: 4 };
    const distinct: Record<PromptKind, Map<string, number>> = { scenes: new Map(), dialogues: new Map(), protective: new Map() };
    const server = await startMockServer({
      transcripts: transcripts(),
      slowMs: 3000,
      retryAfterSeconds: 1,
      fault: (r) => {
        const seenInStage = distinct[r.stage];
        if (r.seen === 0) {
          const k = seenInStage.size;
          seenInStage.set(r.prompt, k);
          return k < FAULT_KINDS.length ? FAULT_KINDS[(k + offsets[r.stage]) % FAULT_KINDS.length] : undefined;
        }
        return r.seen === 1 && seenInStage.get(r.prompt) === 0 ? 'server-error' : undefined;
      },
    });
    const dir = tempDir();
    try {
      const run = await runCli(buildArgs(dir, server.url, ['--timeout', '1']));
      expect(run.exitCode, run.stdout).toBe(0);
      expect(readFinalFiles(dir)).toEqual(reference);

      // Every kind was injected, and malformed replies reached all three stages.
      expect(new Set(server.requests.map((r) => r.fault).filter(Boolean))).toEqual(new Set(FAULT_KINDS));
      expect(new Set(server.requests.filter((r) => r.fault === 'malformed').map((r) => r.stage))).toEqual(new Set(['scenes', 'dialogues', 'protective']));

      // Each transport fault left a retry line in the logs.
      const retries = ['scenes', 'dialogues', 'protective'].flatMap((s) => readJsonlFile<{ event: string; reason: string; delay_ms: number }>(join(dir, `${s}.log.jsonl`)).filter((r) => r.event === 'retry'));
      for (const pattern of [/^429 rate limited \(Retry-After 1s\)$/, /^HTTP 500/, /^connection error/, /^timeout after 1s$/, /^empty reply$/]) {
        expect(retries.some((r) => pattern.test(r.reason)), String(pattern)).toBe(true);
      }
      // Retry-After is honoured: the planned wait is at least the second the server asked for, and
      // the item's next log line (written after the next attempt) is at least that much later.
      const logs = ['scenes', 'dialogues', 'protective'].flatMap((s) => readJsonlFile<{ id: string; event: string; reason?: string; time: string }>(join(dir, `${s}.log.jsonl`)));
      const limited = logs.filter((r) => r.event === 'retry' && r.reason!.startsWith('429'));
      expect(limited.length).toBeGreaterThan(0);
      for (const r of retries.filter((x) => x.reason.startsWith('429'))) expect(r.delay_ms).toBeGreaterThanOrEqual(1000);
      for (const r of limited) {
        const next = logs.slice(logs.indexOf(r) + 1).find((x) => x.id === r.id)!;
        expect(Date.parse(next.time) - Date.parse(r.time)).toBeGreaterThanOrEqual(1000);
      }

      // Malformed text went to the rejects files, with reasons.
      const sceneRejects = readJsonlFile<{ reason: string }>(join(dir, 'scenes.rejects.jsonl')).map((r) => r.reason);
      expect(sceneRejects).toContain('missing Background');
      expect(sceneRejects).toContain('no Type/Location/Background fields (preamble, epilogue or prose)');
      for (const stage of ['dialogues', 'protective']) {
        const reasons = new Set(readJsonlFile<{ reason: string }>(join(dir, `${stage}.rejects.jsonl`)).map((r) => r.reason));
        expect(reasons).toEqual(new Set(['text before the first turn (preamble)', 'heading, not a turn', 'text without a speaker line (narration)', 'text after the last turn (epilogue)']));
      }

      expect(run.stdout).toMatch(/^scenes: 6 done, 0 failed, 0 skipped \(done earlier\) of 6; tokens: \d+ prompt, \d+ completion$/m);
      expect(run.stdout).toMatch(/retried attempts: .*429 rate limited/);
      expect(run.stdout).toMatch(/rejects \(dialogues\.rejects\.jsonl\): /);
    } finally {
      await server.close();
    }
  });

  it('an item that keeps failing is recorded as failed, the run goes on, and a re-run completes it', async () => {
    const brokenParagraph = readProfile(SHORT_PROFILE).paragraphs[2]!;
    let broken = true;
    const server = await startMockServer({
      transcripts: transcripts(),
      fault: (r): FaultKind | undefined => (broken && r.stage === 'protective' && r.prompt.includes(brokenParagraph) ? 'server-error' : undefined),
    });
    const dir = tempDir();
    try {
      const first = await runCli(buildArgs(dir, server.url, ['--max-retries', '2']));
      expect(first.exitCode).toBe(2);
      expect(first.stdout).toMatch(/^protective: 3 done, 1 failed, 0 skipped \(done earlier\) of 4/m);
      expect(first.stdout).toMatch(/failed: HTTP 500: .* \(gave up after 3 attempts\): protective_2/);
      expect(first.stdout).toMatch(/re-run the same command to retry them/);
      const failedLines = readJsonlFile<{ id: string; event: string; attempt: number }>(join(dir, 'protective.log.jsonl')).filter((r) => r.event === 'failed');
      expect(failedLines).toEqual([expect.objectContaining({ id: 'protective_2', attempt: 3 })]);
      expect(readFileSync(join(dir, 'prompted_Beethoven.jsonl'), 'utf8')).not.toContain('"source":"protective_2"');

      broken = false;
      const sent = server.requests.length;
      const second = await runCli(buildArgs(dir, server.url));
      expect(second.exitCode, second.stdout).toBe(0);
      expect(second.stdout).toMatch(/^scenes: 0 done, 0 failed, 6 skipped/m);
      expect(second.stdout).toMatch(/^dialogues: 0 done, 0 failed, 18 skipped/m);
      expect(second.stdout).toMatch(/^protective: 1 done, 0 failed, 3 skipped/m);
      expect(server.requests.length - sent).toBe(1);
      expect(readFinalFiles(dir)).toEqual(reference);
    } finally {
      await server.close();
    }
  });

  it('a 401 stops the run at once with a one-line user error', async () => {
    const server = await startMockServer({ transcripts: transcripts(), fault: () => 'unauthorized' });
    try {
      const error = await runCli(buildArgs(tempDir(), server.url)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(/^scenes: http:\/\/127\.0\.0\.1:\d+\/v1 \(model gpt-3\.5-turbo\) refused the request: HTTP 401: .*Incorrect API key/);
      // Only the requests already in flight were sent (concurrency 4), not all 6.
      expect(server.requests.length).toBeLessThanOrEqual(4);
    } finally {
      await server.close();
    }
  });

  it('an endpoint that cannot be reached stops the run after a few items instead of retrying all of them', async () => {
    const gone = await startMockServer({ transcripts: transcripts() });
    await gone.close();
    const error = await runCli(buildArgs(tempDir(), gone.url, ['--max-retries', '1', '--concurrency', '1'])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/^scenes: cannot reach http:\/\/127\.0\.0\.1:\d+\/v1: connection error: .*ECONNREFUSED.*; stopped after 3 items in a row failed to connect/);
  });

  it('asks for an API key only when talking to the OpenAI API', async () => {
    const saved = process.env.WGPU_CHAR_TEST_NO_KEY;
    delete process.env.WGPU_CHAR_TEST_NO_KEY;
    const error = await runCli(['scenes', '--profile', SHORT_PROFILE, '--out', tempDir(), '--base-url', 'https://api.openai.com/v1', '--api-key-env', 'WGPU_CHAR_TEST_NO_KEY']).catch((e: unknown) => e);
    expect((error as Error).message).toBe('$WGPU_CHAR_TEST_NO_KEY is not set: the OpenAI API needs a key (or pass --base-url for a local endpoint)');
    if (saved !== undefined) process.env.WGPU_CHAR_TEST_NO_KEY = saved;
  });
});

describe('retry policy', () => {
  it('reads Retry-After as seconds, HTTP date or retry-after-ms', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '150', 'retry-after': '2' }))).toBe(150);
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': 'Mon, 01 Jan 2024 00:00:03 GMT' }), now)).toBe(3000);
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });

  it('classifies errors: retry 429/5xx/timeouts/connection, fail other 4xx, stop on 401/403/404', () => {
    const headers = new Headers({ 'retry-after': '1' });
    expect(classifyError(OpenAI.APIError.generate(429, { message: 'slow down' }, undefined, headers), 1000)).toEqual({ retryable: true, fatal: false, reason: '429 rate limited (Retry-After 1s)', retryAfterMs: 1000 });
    expect(classifyError(OpenAI.APIError.generate(503, { message: 'busy' }, undefined, new Headers()), 1000)).toMatchObject({ retryable: true, fatal: false });
    expect(classifyError(new OpenAI.APIConnectionTimeoutError(), 2500)).toMatchObject({ retryable: true, reason: 'timeout after 2.5s' });
    expect(classifyError(new OpenAI.APIConnectionError({ cause: new Error('socket hang up') }), 1000)).toMatchObject({ retryable: true, reason: 'connection error: socket hang up' });
    expect(classifyError(OpenAI.APIError.generate(400, { message: 'context too long' }, undefined, new Headers()), 1000)).toMatchObject({ retryable: false, fatal: false });
    for (const status of [401, 403, 404]) expect(classifyError(OpenAI.APIError.generate(status, { message: 'no' }, undefined, new Headers()), 1000)).toMatchObject({ retryable: false, fatal: true });
  });

  it('backs off exponentially with jitter, capped', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 100, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5].map((a) => backoffDelayMs(a, policy, () => 0))).toEqual([50, 100, 200, 400, 500]);
    expect([1, 2, 3, 4, 5].map((a) => backoffDelayMs(a, policy, () => 1))).toEqual([100, 200, 400, 800, 1000]);
  });
});

describe('progress line', () => {
  it('redraws one line on a TTY and prints plain lines otherwise', () => {
    let tty = '';
    const onTty = new Progress('dialogues', 3, { write: (t: string) => (tty += t), isTTY: true }, 0, 5);
    onTty.tick('done');
    onTty.tick('failed');
    onTty.tick('done');
    onTty.finish();
    expect(tty.startsWith('\rdialogues  1/3  33%')).toBe(true);
    expect(tty.endsWith('\n')).toBe(true);
    expect(tty).toMatch(/\rdialogues  3\/3  100%  [\d.]+\/s  in 0:00  failed 1  \(5 done earlier\) *\n$/);

    let plain = '';
    const onPipe = new Progress('scenes', 2, { write: (t: string) => (plain += t) }, 60_000);
    onPipe.tick('done');
    onPipe.tick('done');
    onPipe.finish();
    expect(plain).toMatch(/^scenes {5}2\/2  100%  [\d.]+\/s  in 0:00\n$/);
  });
});
