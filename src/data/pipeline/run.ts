/**
 * Runs the `wgpu-char data <scenes|dialogues|protective|convert|build>` commands (options declared
 * in src/cli/data.ts): builds a character's training set from a profile through any
 * OpenAI-compatible API. See docs/data-pipeline.md.
 */
import { resolve } from 'node:path';
import { UserError } from '../../errors.ts';
import { DEFAULT_RETRY_POLICY, type GenerationSettings, type RetryPolicy } from './client.ts';
import { readProfile, type Profile } from './profile.ts';
import type { ProgressStream } from './progress.ts';
import { formatConvertReport, formatStageReport } from './report.ts';
import { loadCharacter, runConvertStage, runDialoguesStage, runProtectiveStage, runScenesStage, saveCharacter, withLock, type RunContext, type StageReport } from './stages.ts';
import { loadTemplates } from './template.ts';

/** Where a command writes; tests pass their own so nothing reaches the real process. */
export type DataIO = {
  stdout: { write(text: string): unknown };
  stderr: ProgressStream;
  setExitCode(code: number): void;
};

/** Exit code when the run finished but some items failed after all their attempts (re-run to retry them). */
export const EXIT_SOME_FAILED = 2;

/** Option values of the `data` commands, as commander gives them. */
export type DataCommandOptions = {
  out: string;
  profile?: string;
  name?: string;
  baseUrl?: string;
  model: string;
  apiKeyEnv: string;
  temperature: number;
  topP: number;
  maxTokens?: number;
  systemPrompt: string;
  concurrency: number;
  maxRetries: number;
  timeout: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  prompts?: string;
  progressInterval: number;
  scenes: number;
  seed: number;
  tokenizer?: string;
  maxLength: number;
};

function apiKeyFor(opts: DataCommandOptions, baseURL: string): string {
  const key = process.env[opts.apiKeyEnv];
  if (key) return key;
  if (/^https?:\/\/api\.openai\.com(\/|$)/.test(baseURL)) throw new UserError(`$${opts.apiKeyEnv} is not set: the OpenAI API needs a key (or pass --base-url for a local endpoint)`);
  // Local servers (vLLM, `wgpu-char serve`) ignore the key, but the client requires one.
  return 'EMPTY';
}

function runContext(opts: DataCommandOptions, io: DataIO): RunContext {
  const baseURL = opts.baseUrl ?? process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1';
  const settings: GenerationSettings = {
    baseURL,
    apiKey: apiKeyFor(opts, baseURL),
    model: opts.model,
    temperature: opts.temperature,
    topP: opts.topP,
    maxTokens: opts.maxTokens,
    systemPrompt: opts.systemPrompt,
    timeoutMs: Math.round(opts.timeout * 1000),
  };
  const retry: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxRetries: opts.maxRetries, baseDelayMs: opts.backoffBaseMs, maxDelayMs: opts.backoffMaxMs };
  return {
    outDir: resolve(opts.out),
    settings,
    retry,
    concurrency: opts.concurrency,
    templates: loadTemplates(opts.prompts !== undefined ? resolve(opts.prompts) : undefined),
    progressStream: io.stderr,
    progressIntervalMs: opts.progressInterval * 1000,
  };
}

/** The profile from --profile (saved into --out for later stages), else the saved copy. */
function profileFor(opts: DataCommandOptions, outDir: string): Profile {
  if (opts.profile !== undefined) {
    const profile = readProfile(opts.profile, opts.name);
    saveCharacter(outDir, profile, resolve(opts.profile));
    return profile;
  }
  const saved = loadCharacter(outDir);
  return opts.name !== undefined ? { ...saved, shortName: opts.name } : saved;
}

export type DataCommand = 'scenes' | 'dialogues' | 'protective' | 'convert' | 'build';

/** Runs one `data` subcommand with parsed options; returns the exit code (0, or EXIT_SOME_FAILED). */
export async function runDataCommand(command: DataCommand, opts: DataCommandOptions, io: DataIO): Promise<number> {
  const outDir = resolve(opts.out);
  const print = (lines: string[]) => io.stdout.write(lines.map((l) => l + '\n').join(''));
  const reports: StageReport[] = [];
  return withLock(outDir, async () => {
    const profile = profileFor(opts, outDir);
    const needsApi = command !== 'convert';
    const ctx = needsApi ? runContext(opts, io) : undefined;
    const stage = async (run: () => Promise<StageReport>) => {
      const report = await run();
      reports.push(report);
      print(formatStageReport(report));
    };
    if (command === 'scenes' || command === 'build') await stage(() => runScenesStage(ctx!, profile, opts.scenes, opts.seed));
    if (command === 'dialogues' || command === 'build') await stage(() => runDialoguesStage(ctx!, profile));
    if (command === 'protective' || command === 'build') await stage(() => runProtectiveStage(ctx!, profile));
    if (command === 'convert' || command === 'build') {
      print(formatConvertReport(await runConvertStage(outDir, profile, { tokenizerPath: opts.tokenizer, maxLength: opts.maxLength })));
    }
    const failed = reports.reduce((n, r) => n + r.summary.failed, 0);
    if (failed > 0) {
      print([`${failed} item(s) failed after all attempts; re-run the same command to retry them (finished items are kept)`]);
      return EXIT_SOME_FAILED;
    }
    return 0;
  }, (pid) => io.stderr.write(`wgpu-char: ${outDir}: taking over the lock of pid ${pid}, which is no longer running\n`));
}

/**
 * A kill at any point is safe (every reply is fsynced to the log before it counts as done); on
 * Ctrl-C / SIGTERM we only add a hint and let the process end.
 */
export function withInterruptHint<T>(outDir: string, io: DataIO, work: () => Promise<T>): Promise<T> {
  const onSignal = (signal: NodeJS.Signals) => {
    io.stderr.write(`\n${signal}: stopped. Every finished request is in the logs under ${outDir}; re-run the same command to resume.\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return work().finally(() => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
}
