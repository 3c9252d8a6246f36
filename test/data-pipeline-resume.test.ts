/**
 * Kill-and-resume: a real child process (`node bin/wgpu-char.js data build`)
 * is stopped by a signal in the middle of a stage, then the same command is run again. Nothing may
 * be lost or duplicated: every item has exactly one `ok` line in its log and the final files equal
 * an uninterrupted run's. Also: a log cut in the middle of a line, and the folder lock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.ts';
import { startMockServer } from '../src/data/pipeline/mock-server.ts';
import { buildArgs, readFinalFiles, okCounts, REPO_ROOT, runCli, transcripts, readJsonlFile } from './fixtures/data-pipeline/helpers.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wgpu-char-resume-'));
  dirs.push(dir);
  return dir;
}

let referenceDir: string;
let reference: Record<string, string>;
const EXPECTED_ITEMS = { scenes: 6, dialogues: 18, protective: 4 };

beforeAll(async () => {
  const server = await startMockServer({ transcripts: transcripts() });
  try {
    referenceDir = tempDir();
    expect((await runCli(buildArgs(referenceDir, server.url))).exitCode).toBe(0);
    reference = readFinalFiles(referenceDir);
  } finally {
    await server.close();
  }
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

type ChildResult = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

function spawnBuild(args: string[]): { child: ChildProcess; done: Promise<ChildResult> } {
  const child = spawn(process.execPath, ['bin/wgpu-char.js', 'data', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<ChildResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

/** Every item of every stage has exactly one `ok` line. */
function expectEachItemOnce(dir: string): void {
  for (const [stage, count] of Object.entries(EXPECTED_ITEMS)) {
    const counts = okCounts(join(dir, `${stage}.log.jsonl`));
    expect(counts.size, stage).toBe(count);
    expect([...counts.values()].every((n) => n === 1), stage).toBe(true);
  }
  const sources = readJsonlFile<{ source: string }>(join(dir, 'prompted_Beethoven.jsonl')).map((s) => s.source);
  expect(new Set(sources).size).toBe(sources.length);
}

describe('kill and resume', () => {
  it('SIGKILL in the middle of the dialogues stage, then a re-run: nothing lost, nothing duplicated', async () => {
    const dir = tempDir();
    let dialogueRequests = 0;
    let run: ReturnType<typeof spawnBuild> | undefined;
    const server = await startMockServer({
      transcripts: transcripts(),
      onRequest: (r) => {
        if (r.stage === 'dialogues' && ++dialogueRequests === 6) run!.child.kill('SIGKILL');
      },
    });
    try {
      run = spawnBuild(buildArgs(dir, server.url));
      const killed = await run.done;
      expect(killed.signal).toBe('SIGKILL');
      // Stage 1 finished and was parsed; stage 2 has some replies logged, each once; no SFT file yet.
      expect(readFileSync(join(dir, 'scenes.jsonl'), 'utf8')).toBe(reference['scenes.jsonl']);
      const partial = okCounts(join(dir, 'dialogues.log.jsonl'));
      expect(partial.size).toBeGreaterThanOrEqual(2);
      expect(partial.size).toBeLessThan(18);
      expect([...partial.values()].every((n) => n === 1)).toBe(true);
      expect(existsSync(join(dir, 'prompted_Beethoven.jsonl'))).toBe(false);

      const resumed = await spawnBuild(buildArgs(dir, server.url)).done;
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toMatch(/^scenes: 0 done, 0 failed, 6 skipped/m);
      expect(resumed.stdout).toContain(`dialogues: ${18 - partial.size} done, 0 failed, ${partial.size} skipped`);
      expect(readFinalFiles(dir)).toEqual(reference);
      expectEachItemOnce(dir);
    } finally {
      await server.close();
    }
  });

  it('SIGTERM in the middle of the protective stage: a hint, exit 143, the lock released, then a clean resume', async () => {
    const dir = tempDir();
    let protectiveRequests = 0;
    let run: ReturnType<typeof spawnBuild> | undefined;
    const server = await startMockServer({
      transcripts: transcripts(),
      onRequest: (r) => {
        if (r.stage === 'protective' && ++protectiveRequests === 3) run!.child.kill('SIGTERM');
      },
    });
    try {
      run = spawnBuild(buildArgs(dir, server.url, ['--concurrency', '1']));
      const stopped = await run.done;
      expect(stopped.code).toBe(143);
      expect(stopped.stderr).toMatch(/SIGTERM: stopped\. Every finished request is in the logs under .*; re-run the same command to resume\./);
      expect(existsSync(join(dir, '.data.lock'))).toBe(false);
      // Two replies were logged before the third request; the third reply may or may not have
      // been logged before the signal was handled (both are fine: it is then skipped or redone).
      const logged = okCounts(join(dir, 'protective.log.jsonl')).size;
      expect([2, 3]).toContain(logged);

      const resumed = await spawnBuild(buildArgs(dir, server.url)).done;
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toContain(`protective: ${4 - logged} done, 0 failed, ${logged} skipped`);
      expect(readFinalFiles(dir)).toEqual(reference);
      expectEachItemOnce(dir);
    } finally {
      await server.close();
    }
  });

  it('a log line cut in the middle (killed during a write) is dropped and its item redone', async () => {
    const dir = tempDir();
    cpSync(referenceDir, dir, { recursive: true });
    const log = join(dir, 'protective.log.jsonl');
    const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
    const last = lines.pop()!;
    writeFileSync(log, lines.map((l) => l + '\n').join(''));
    appendFileSync(log, last.slice(0, Math.floor(last.length / 2)));

    const server = await startMockServer({ transcripts: transcripts() });
    try {
      const run = await runCli(buildArgs(dir, server.url));
      expect(run.exitCode).toBe(0);
      expect(run.stdout).toContain('protective: 1 done, 0 failed, 3 skipped');
      expect(run.stdout).not.toContain('unreadable');
      expect(server.requests.length).toBe(1);
      expect(readFinalFiles(dir)).toEqual(reference);
      expectEachItemOnce(dir);
    } finally {
      await server.close();
    }
  });

  it('a changed prompt (edited template or profile) is sent again, not served from the old reply', async () => {
    const dir = tempDir();
    cpSync(referenceDir, dir, { recursive: true });
    const server = await startMockServer({ transcripts: transcripts() });
    try {
      const run = await runCli([...buildArgs(dir, server.url), '--prompts', join(REPO_ROOT, 'test/fixtures/data-pipeline/original-prompts')]);
      expect(run.exitCode).toBe(0);
      expect(run.stdout).toMatch(/^scenes: 6 done, 0 failed, 0 skipped/m);
      expect(server.requests.filter((r) => r.stage === 'scenes').length).toBe(6);
      // The first reply per item is still the one used: each item now has one ok line per prompt version.
      expect([...okCounts(join(dir, 'scenes.log.jsonl')).values()].every((n) => n === 2)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('refuses a folder another live process is writing to, and takes over a stale lock', async () => {
    const dir = tempDir();
    cpSync(referenceDir, dir, { recursive: true });
    writeFileSync(join(dir, '.data.lock'), String(process.ppid));
    const error = await runCli(['convert', '--out', dir]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(/another run \(pid \d+\) is writing to this folder/);

    const exited = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => exited.on('close', resolve));
    writeFileSync(join(dir, '.data.lock'), String(exited.pid));
    const run = await runCli(['convert', '--out', dir]);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/^convert: .*prompted_Beethoven\.jsonl: 22 samples \(18 experiences \+ 4 protective\)/m);
    expect(run.stderr).toContain(`${dir}: taking over the lock of pid ${exited.pid}, which is no longer running`);
    expect(existsSync(join(dir, '.data.lock'))).toBe(false);
  });
});

describe('convert', () => {
  it('is re-runnable on its own and reports token lengths with --tokenizer', async () => {
    const dir = tempDir();
    cpSync(referenceDir, dir, { recursive: true });
    rmSync(join(dir, 'prompted_Beethoven.jsonl'));
    const tokenizer = join(REPO_ROOT, 'weights/tiny/tokenizer.model');
    const run = await runCli(['convert', '--out', dir, ...(existsSync(tokenizer) ? ['--tokenizer', tokenizer] : [])]);
    expect(run.exitCode).toBe(0);
    expect(readFileSync(join(dir, 'prompted_Beethoven.jsonl'), 'utf8')).toBe(reference['prompted_Beethoven.jsonl']);
    const stats = JSON.parse(readFileSync(join(dir, 'stats.json'), 'utf8'));
    expect(stats).toMatchObject({ path: 'prompted_Beethoven.jsonl', dialogueSamples: 18, protectiveSamples: 4 });
    if (existsSync(tokenizer)) {
      expect(run.stdout).toMatch(/tokens per sample \(with BOS\): min \d+, median \d+, p95 \d+, max \d+; \d+ over 2048/);
      expect(stats.tokens.samples).toBe(22);
    }
  });

  it('every prompted line has the trainer format', () => {
    for (const sample of readJsonlFile<{ prompt: string; output: string; source: string }>(join(referenceDir, 'prompted_Beethoven.jsonl'))) {
      expect(Object.keys(sample)).toEqual(['prompt', 'output', 'source']);
      expect(sample.prompt).toMatch(/^I want you to act like Ludwig van Beethoven\. [^]*\nLocation: .+\nStatus: .+\n\nThe interactions are as follows:\n\n$/);
      expect(sample.output).toMatch(/^[^\n]+? \((speaking|thinking)\): [^]*<\|eot\|>$/);
      for (const turn of sample.output.split('<|eot|>\n')) expect(turn).toMatch(/^(Beethoven|Neefe|Ries|Schindler|Czerny|Lily|Miles) \((speaking|thinking)\): \S/);
    }
  });
});
