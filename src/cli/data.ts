/**
 * `wgpu-char data <scenes|dialogues|protective|convert|build>`: the options of the data pipeline's
 * commands; src/data/pipeline/run.ts runs them. See docs/data-pipeline.md.
 */
import { type Command, Option } from 'commander';
import { resolve } from 'node:path';
import { DEFAULT_RETRY_POLICY } from '../data/pipeline/client.ts';
import type { DataCommand, DataCommandOptions, DataIO } from '../data/pipeline/run.ts';
import { integerOption, numberOption } from './options.ts';

/** The real process's streams; tests pass their own DataIO to `register`. */
const processIO: DataIO = {
  stdout: process.stdout,
  stderr: process.stderr,
  setExitCode: (code) => {
    process.exitCode = code;
  },
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
    .addOption(numberOption('--temperature <t>', 'sampling temperature', { min: 0, max: 2 }, 0.7))
    .addOption(numberOption('--top-p <p>', 'nucleus sampling', { min: 0, max: 1 }, 0.95))
    .addOption(integerOption('--max-tokens <n>', 'completion token limit per request (default: none, as the original)', { min: 1 }))
    .option('--system-prompt <text>', 'system message of every request', 'You are a helpful assistant.')
    .addOption(integerOption('--concurrency <n>', 'requests in flight', { min: 1 }, 16))
    .addOption(integerOption('--max-retries <n>', 'retries per item after the first attempt (429, 5xx, timeouts, empty replies)', { min: 0 }, DEFAULT_RETRY_POLICY.maxRetries))
    .addOption(numberOption('--timeout <seconds>', 'per-request timeout', { min: 0.001, max: 86_400 }, 300))
    .addOption(integerOption('--backoff-base-ms <ms>', 'first retry delay; doubles per attempt, with jitter', { min: 0 }, DEFAULT_RETRY_POLICY.baseDelayMs))
    .addOption(integerOption('--backoff-max-ms <ms>', 'longest retry delay (a longer Retry-After is still honoured, up to 5 min)', { min: 0 }, DEFAULT_RETRY_POLICY.maxDelayMs))
    .option('--prompts <dir>', 'template folder (default: our own templates in src/data/prompts); the original seed_data/prompts reproduces the paper')
    .addOption(numberOption('--progress-interval <seconds>', 'seconds between progress lines when stderr is not a terminal', { min: 0, max: 86_400 }, 10));
}

function addSceneOptions(cmd: Command): Command {
  return cmd
    .addOption(integerOption('--scenes <n>', 'scene requests: one per paragraph, repeated and topped up to n by seeded weighted picks', { min: 1 }, 100))
    .addOption(integerOption('--seed <n>', 'seed of the top-up picks (Python random.seed)', { min: 0 }, 42));
}

function addConvertOptions(cmd: Command): Command {
  return cmd
    .option('--tokenizer <path>', 'tokenizer model for token length statistics (optional)')
    .addOption(integerOption('--max-length <n>', 'training sequence length, for the "over the limit" count', { min: 1 }, 2048));
}

/** Adds `data` and its five subcommands to the program. */
export function register(program: Command, io: DataIO = processIO): void {
  const data = program
    .command('data')
    .description("build a character's training set (experience reconstruction) through an OpenAI-compatible API")
    .addHelpText('after', '\nStages: scenes -> dialogues -> protective -> convert; `build` runs all four and resumes where a previous run stopped.');

  const action = (command: DataCommand) => async (opts: DataCommandOptions) => {
    const { runDataCommand, withInterruptHint } = await import('../data/pipeline/run.ts');
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
