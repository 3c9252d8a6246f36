/**
 * `wgpu-char interview single|turns`: the paper's single- and multi-turn interviews of a trained character through
 * an OpenAI-compatible /completions endpoint (src/eval/interview.ts runs it). The output is scored
 * by `wgpu-char score`.
 */
import { type Command } from 'commander';
import { resolve } from 'node:path';
import { DEFAULT_RETRY_POLICY } from '../data/pipeline/client.ts';
import { EXIT_SOME_FAILED, type DataIO } from '../data/pipeline/run.ts';
import { integerOption, numberOption } from './options.ts';

const processIO: DataIO = {
  stdout: process.stdout,
  stderr: process.stderr,
  setExitCode: (code) => {
    process.exitCode = code;
  },
};

export type InterviewCommandOptions = {
  character: string;
  fullName?: string;
  baseUrl: string;
  model: string;
  label?: string;
  out: string;
  questions?: string;
  maxThinking: number;
  temperature: number;
  topP: number;
  maxTokens: number;
  apiKeyEnv: string;
  concurrency: number;
  maxRetries: number;
  timeout: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  progressInterval: number;
};

/** Options of the evaluation commands' API clients (interview and score share them). */
export function addClientOptions(cmd: Command, concurrency: number): Command {
  return cmd
    .option('--api-key-env <name>', 'environment variable holding the API key (not needed for local endpoints)', 'OPENAI_API_KEY')
    .addOption(integerOption('--concurrency <n>', 'requests in flight', { min: 1 }, concurrency))
    .addOption(integerOption('--max-retries <n>', 'retries per request after the first attempt (429, 5xx, timeouts, empty replies)', { min: 0 }, DEFAULT_RETRY_POLICY.maxRetries))
    .addOption(numberOption('--timeout <seconds>', 'per-request timeout', { min: 0.001, max: 86_400 }, 300))
    .addOption(integerOption('--backoff-base-ms <ms>', 'first retry delay; doubles per attempt, with jitter', { min: 0 }, DEFAULT_RETRY_POLICY.baseDelayMs))
    .addOption(integerOption('--backoff-max-ms <ms>', 'longest retry delay (a longer Retry-After is still honoured, up to 5 min)', { min: 0 }, DEFAULT_RETRY_POLICY.maxDelayMs))
    .addOption(numberOption('--progress-interval <seconds>', 'seconds between progress lines when stderr is not a terminal', { min: 0, max: 86_400 }, 10));
}

/** The options `single` and `turns` share: the character, its endpoint and sampling, the output. */
function addCharacterOptions(cmd: Command): Command {
  return cmd
      .requiredOption('--character <name>', 'short name of the character, as in its turns (Beethoven, Caesar, ...)')
      .option('--full-name <name>', "full name in the meta prompt (default: the paper's nine characters' full names, else --character)")
      .requiredOption('--base-url <url>', 'the character: an OpenAI-compatible endpoint with /completions, e.g. http://127.0.0.1:8000/v1 (wgpu-char serve)')
      .requiredOption('--model <name>', 'model name sent to the endpoint')
      .option('--label <name>', 'model name in the result folder, <Character>_<label>_result (default: --model)')
      .requiredOption('--out <dir>', 'output folder: <Character>_<label>_result/interview.json and logs/; re-use it to resume')
      .option('--questions <file>', "question file, a JSON array of {topic_id, topic, question} (default: the paper's set of the character)")
      .addOption(numberOption('--temperature <t>', 'sampling temperature (the paper: 0.2)', { min: 0, max: 2 }, 0.2))
      .addOption(numberOption('--top-p <p>', 'nucleus sampling (the paper: 0.95)', { min: 0, max: 1 }, 0.95))
      .addOption(integerOption('--max-tokens <n>', 'reply token limit (the paper: 256)', { min: 1 }, 256));
}

export function register(program: Command, io: DataIO = processIO): void {
  const interview = program
    .command('interview')
    .description("interview a character as the paper's evaluation does (score the results with `wgpu-char score`)");

  addClientOptions(
    addCharacterOptions(
      interview
        .command('single')
        .description('ask every question of the character\'s set on its own (SFT prompt, "Coffee Shop - Afternoon"); resumable: a re-run sends only what is missing'),
    ).addOption(integerOption('--max-thinking <n>', 're-ask a question at most n times while the reply is a thinking turn (the original has no limit)', { min: 0 }, 3)),
    8,
  ).action(async (opts: InterviewCommandOptions) => {
    const code = await runInterviewCommand(opts, io);
    if (code !== 0) io.setExitCode(code);
  });

  addClientOptions(
    addCharacterOptions(
      interview
        .command('turns')
        .description('multi-turn interviews: an interviewer model and the character alternate for --rounds exchanges per topic; resumable per step'),
    )
      .requiredOption('--interviewer-base-url <url>', 'the interviewer: an OpenAI-compatible chat endpoint (the paper: gpt-3.5-turbo)')
      .requiredOption('--interviewer-model <name>', 'interviewer model name')
      .option('--interviewer-api-key-env <name>', 'environment variable holding the interviewer\'s API key', 'OPENAI_API_KEY')
      .addOption(integerOption('--rounds <n>', 'exchanges (interviewer question, character answer) per interview', { min: 1 }, 5))
      .option('--prompts <dir>', `folder holding the interviewer prompt agent_meta_prompt_interviewer_chatgpt.txt (default: ours; the original's seed_data/prompts reproduces the paper)`)
      .option('--profiles <dir>', "folder of wiki_<Short>.txt profiles, for characters beyond the paper's nine (the interviewer sees paragraph 0)"),
    8,
  ).action(async (opts: InterviewTurnsCommandOptions) => {
    const code = await runInterviewTurnsCommand(opts, io);
    if (code !== 0) io.setExitCode(code);
  });
}

export type InterviewTurnsCommandOptions = Omit<InterviewCommandOptions, 'maxThinking'> & {
  interviewerBaseUrl: string;
  interviewerModel: string;
  interviewerApiKeyEnv: string;
  rounds: number;
  prompts?: string;
  profiles?: string;
};

/** --character, --label and the question set, checked. */
/** What both protocols run with: the character, its questions and output folder, its endpoint and sampling, retries and progress. */
async function commonSetup(opts: Omit<InterviewCommandOptions, 'maxThinking'>, protocol: 'single' | 'turns', io: DataIO) {
  const { loadQuestions, defaultQuestionsPath } = await import('../eval/interview.ts');
  const { apiKeyFrom, retryPolicyOf } = await import('../eval/api.ts');
  const { UserError } = await import('../errors.ts');
  const { existsSync } = await import('node:fs');
  if (/[/\\]/.test(opts.character) || opts.character.trim() === '') throw new UserError(`--character: must be a short name without slashes (got ${JSON.stringify(opts.character)})`);
  const label = opts.label ?? opts.model;
  if (/[/\\]/.test(label) || label.trim() === '') throw new UserError(`--label: the model part of a folder name may not contain slashes (got ${JSON.stringify(label)}); pass --label`);
  let questionsPath = opts.questions;
  if (questionsPath === undefined) {
    questionsPath = defaultQuestionsPath(opts.character, protocol);
    if (!existsSync(questionsPath)) throw new UserError(`--character ${opts.character}: no shipped question set (the paper's characters: Beethoven, Caesar, Cleopatra, Hermione, Martin, Newton, Socrates, Spartacus, Voldemort); pass --questions FILE`);
  }
  return {
    label,
    run: {
      shortName: opts.character,
      fullName: opts.fullName,
      questions: loadQuestions(questionsPath),
      model: opts.model,
      label,
      outDir: resolve(opts.out),
      settings: {
        baseURL: opts.baseUrl,
        apiKey: apiKeyFrom(opts.apiKeyEnv, opts.baseUrl, '--base-url'),
        temperature: opts.temperature,
        topP: opts.topP,
        maxTokens: opts.maxTokens,
        timeoutMs: Math.round(opts.timeout * 1000),
      },
      retry: retryPolicyOf(opts),
      concurrency: opts.concurrency,
      progressStream: io.stderr,
      progressIntervalMs: opts.progressInterval * 1000,
    },
  };
}

export async function runInterviewTurnsCommand(opts: InterviewTurnsCommandOptions, io: DataIO): Promise<number> {
  const { runInterviewTurns, loadInterviewerPrompt } = await import('../eval/interview.ts');
  const { profileLead } = await import('../eval/judge.ts');
  const { apiKeyFrom } = await import('../eval/api.ts');
  const { label, run } = await commonSetup(opts, 'turns', io);
  const report = await runInterviewTurns({
    ...run,
    interviewer: {
      baseURL: opts.interviewerBaseUrl,
      apiKey: apiKeyFrom(opts.interviewerApiKeyEnv, opts.interviewerBaseUrl, '--interviewer-base-url'),
      model: opts.interviewerModel,
      ...INTERVIEWER_SAMPLING,
      timeoutMs: Math.round(opts.timeout * 1000),
    },
    interviewerTemplate: loadInterviewerPrompt(opts.prompts !== undefined ? resolve(opts.prompts) : undefined),
    profile: profileLead(opts.character, opts.profiles !== undefined ? resolve(opts.profiles) : undefined),
    rounds: opts.rounds,
  });
  const lines = [`${opts.character} (${label}): ${report.finished}/${report.interviews} interviews of ${opts.rounds} rounds finished; ${report.steps.reduce((n, s) => n + s.done, 0)} requests this run, ${report.steps.reduce((n, s) => n + s.skipped, 0)} replies from earlier runs`];
  if (report.resultPath) lines.push(`wrote ${report.resultPath}`);
  else lines.push(`${report.failed} interview(s) stopped at a request that failed after all attempts; re-run the same command to continue them (the result file is written once every interview is finished)`);
  io.stdout.write(lines.map((l) => l + '\n').join(''));
  return report.failed > 0 ? EXIT_SOME_FAILED : 0;
}

/** The paper's interviewer request: 128 tokens, temperature 0.2, top_p 0.95, the default system message, no stop. */
const INTERVIEWER_SAMPLING = { temperature: 0.2, topP: 0.95, maxTokens: 128, systemPrompt: 'You are a helpful assistant.' } as const;

export async function runInterviewCommand(opts: InterviewCommandOptions, io: DataIO): Promise<number> {
  const { runInterviewSingle } = await import('../eval/interview.ts');
  const { label, run } = await commonSetup(opts, 'single', io);
  const report = await runInterviewSingle({ ...run, maxThinking: opts.maxThinking });
  const requests = report.rounds.reduce((n, r) => n + r.done, 0);
  const lines = [`${opts.character} (${label}): ${report.questions} questions, ${requests} requests this run, ${report.rounds.reduce((n, r) => n + r.skipped, 0)} replies from earlier runs`];
  if (report.rounds.length > 1) lines.push(`re-asked after a thinking turn: ${report.rounds.slice(1).map((r, i) => `round ${i + 1}: ${r.total}`).join(', ')}`);
  if (report.neverSpoke > 0) lines.push(`${report.neverSpoke} question(s) got only thinking turns after --max-thinking ${opts.maxThinking} re-asks (no speaking reply; the judge sees an empty answer)`);
  if (report.truncated > 0) lines.push(`${report.truncated} reply(s) cut at --max-tokens ${opts.maxTokens} (finish_reason "length")`);
  if (report.resultPath) lines.push(`wrote ${report.resultPath}`);
  if (report.failed > 0) {
    lines.push(`${report.failed} question(s) have no reply after all attempts; re-run the same command to retry them (the result file is written once every question has its reply)`);
  }
  io.stdout.write(lines.map((l) => l + '\n').join(''));
  return report.failed > 0 ? EXIT_SOME_FAILED : 0;
}
