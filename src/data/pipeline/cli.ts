import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { UserError } from '../../errors.ts';
import { DEFAULT_RETRY_POLICY, type GenerationSettings, type RetryPolicy } from './client.ts';
import { readProfile, type Profile } from './profile.ts';
import type { ProgressStream } from './progress.ts';
import { formatConvertReport, formatStageReport } from './report.ts';
import { loadCharacter, runConvertStage, runDialoguesStage, runProtectiveStage, runScenesStage, saveCharacter, withLock, type RunContext, type StageReport } from './stages.ts';
import { loadTemplates } from './template.ts';

/**
 * `wgpu-char data <scenes|dialogues|protective|convert|build>`: build a character's training set
 * from a profile through any OpenAI-compatible API. See docs/data-pipeline.md.
 */

/** Where a command writes; tests pass their own so nothing reaches the real process. */
export type DataIO = {
  stdout: { write(text: string): unknown };
  stderr: ProgressStream;
  setExitCode(code: number): void;
};

const processIO: DataIO = {
  stdout: process.stdout,
  stderr: process.stderr,
  setExitCode: (code) => {
    process.exitCode = code;
  },
};

/** Exit code when the run finished but some items failed after all their attempts (re-run to retry them). */
export const EXIT_SOME_FAILED = 2;

function intOption(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got "${value}"`);
    return n;
  };
}
function numberOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number in [${min}, ${max}], got "${value}"`);
    return n;
  };
}

type CommonOptions = {
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

function addOutputOptions(cmd: Command, profileRequired: boolean): Command {
  const profile = new Option('--profile <file>', profileRequired ? 'character profile: "# Full Name", then paragraphs separated by blank lines' : 'character profile (default: the copy saved in --out by `data scenes`)');
  if (profileRequired) profile.makeOptionMandatory();
  return cmd
    .requiredOption('--out <dir>', 'output folder (logs, parsed stages, prompted file); re-use it to resume')
    .addOption(profile)
    .option('--name <short>', 'short name of the character (default: <Short> from wiki_<Short>.txt)');
}

function addApiOptions(cmd: Command): Command {
  return cmd
    .option('--base-url <url>', 'OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL or the OpenAI API)')
    .option('--model <name>', 'model name sent to the endpoint', 'gpt-3.5-turbo')
    .option('--api-key-env <name>', 'environment variable holding the API key (not needed for local endpoints)', 'OPENAI_API_KEY')
    .option('--temperature <t>', 'sampling temperature', numberOption(0, 2), 0.7)
    .option('--top-p <p>', 'nucleus sampling', numberOption(0, 1), 0.95)
    .option('--max-tokens <n>', 'completion token limit per request (default: none, as the original)', intOption(1))
    .option('--system-prompt <text>', 'system message of every request', 'You are a helpful assistant.')
    .option('--concurrency <n>', 'requests in flight', intOption(1), 16)
    .option('--max-retries <n>', 'retries per item after the first attempt (429, 5xx, timeouts, empty replies)', intOption(0), DEFAULT_RETRY_POLICY.maxRetries)
    .option('--timeout <seconds>', 'per-request timeout', numberOption(0.001, 86_400), 300)
    .option('--backoff-base-ms <ms>', 'first retry delay; doubles per attempt, with jitter', intOption(0), DEFAULT_RETRY_POLICY.baseDelayMs)
    .option('--backoff-max-ms <ms>', 'longest retry delay (a longer Retry-After is still honoured, up to 5 min)', intOption(0), DEFAULT_RETRY_POLICY.maxDelayMs)
    .option('--prompts <dir>', 'template folder (default: our own templates in src/data/prompts); the original seed_data/prompts reproduces the paper')
    .option('--progress-interval <seconds>', 'seconds between progress lines when stderr is not a terminal', numberOption(0, 86_400), 10);
}

function addSceneOptions(cmd: Command): Command {
  return cmd
    .option('--scenes <n>', 'scene requests: one per paragraph, repeated and topped up to n by seeded weighted picks', intOption(1), 100)
    .option('--seed <n>', 'seed of the top-up picks (Python random.seed)', intOption(0), 42);
}

function addConvertOptions(cmd: Command): Command {
  return cmd
    .option('--tokenizer <path>', 'tokenizer model for token length statistics (optional)')
    .option('--max-length <n>', 'training sequence length, for the "over the limit" count', intOption(1), 2048);
}

function apiKeyFor(opts: CommonOptions, baseURL: string): string {
  const key = process.env[opts.apiKeyEnv];
  if (key) return key;
  if (/^https?:\/\/api\.openai\.com(\/|$)/.test(baseURL)) throw new UserError(`$${opts.apiKeyEnv} is not set: the OpenAI API needs a key (or pass --base-url for a local endpoint)`);
  // Local servers (vLLM, `wgpu-char serve`) ignore the key, but the client requires one.
  return 'EMPTY';
}

function runContext(opts: CommonOptions, io: DataIO): RunContext {
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
function profileFor(opts: CommonOptions, outDir: string): Profile {
  if (opts.profile !== undefined) {
    const profile = readProfile(opts.profile, opts.name);
    saveCharacter(outDir, profile, resolve(opts.profile));
    return profile;
  }
  const saved = loadCharacter(outDir);
  return opts.name !== undefined ? { ...saved, shortName: opts.name } : saved;
}

type DataCommand = 'scenes' | 'dialogues' | 'protective' | 'convert' | 'build';

/** Runs one `data` subcommand with parsed options; returns the exit code (0, or EXIT_SOME_FAILED). */
export async function runDataCommand(command: DataCommand, opts: CommonOptions, io: DataIO = processIO): Promise<number> {
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
  });
}

/**
 * A kill at any point is safe (every reply is fsynced to the log before it counts as done); on
 * Ctrl-C / SIGTERM we only add a hint and let the process end.
 */
function withInterruptHint<T>(outDir: string, io: DataIO, work: () => Promise<T>): Promise<T> {
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

/** Adds `data` and its five subcommands to the program. */
export function registerDataCommands(program: Command, io: DataIO = processIO): void {
  const data = program
    .command('data')
    .description("build a character's training set (experience reconstruction) through an OpenAI-compatible API")
    .addHelpText('after', '\nStages: scenes -> dialogues -> protective -> convert; `build` runs all four and resumes where a previous run stopped.');

  const action = (command: DataCommand) => async (opts: CommonOptions) => {
    const code = await withInterruptHint(resolve(opts.out), io, () => runDataCommand(command, opts, io));
    if (code !== 0) io.setExitCode(code);
  };

  addApiOptions(addSceneOptions(addOutputOptions(data.command('scenes').description('profile -> scenes (type, location, background): one request per paragraph, topped up to --scenes'), true)))
    .action(action('scenes'));
  addApiOptions(addOutputOptions(data.command('dialogues').description('scenes -> experiences: each scene completed into a dialogue (turns with role, action, content)'), false))
    .action(action('dialogues'));
  addApiOptions(addOutputOptions(data.command('protective').description('profile -> protective scenes: the character meets questions from outside its world and stays in character'), false))
    .action(action('protective'));
  addConvertOptions(addOutputOptions(data.command('convert').description('experiences -> prompted_<Name>.jsonl, the SFT file the trainer reads'), false))
    .action(action('convert'));
  addConvertOptions(addApiOptions(addSceneOptions(addOutputOptions(data.command('build').description('all four stages; resumable: a re-run skips what succeeded and retries what failed'), true))))
    .action(action('build'));
}
