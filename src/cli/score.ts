/**
 * `wgpu-char score`: interviews (ours or the paper's released ones) judged by an LLM on the
 * paper's five dimensions, aggregated with bootstrap confidence intervals (src/eval/score.ts).
 */
import { type Command, Option } from 'commander';
import { resolve } from 'node:path';
import { EXIT_SOME_FAILED, type DataIO } from '../data/pipeline/run.ts';
import { UserError } from '../errors.ts';
import { addClientOptions } from './interview.ts';
import { integerOption } from './options.ts';

const processIO: DataIO = {
  stdout: process.stdout,
  stderr: process.stderr,
  setExitCode: (code) => {
    process.exitCode = code;
  },
};

const ALL_DIMENSIONS = ['memory', 'values', 'personality', 'hallucination', 'stability'];

export type ScoreCommandOptions = {
  results: string[];
  judgeBaseUrl: string;
  judgeModel: string;
  dimensions: string[];
  out: string;
  prompts?: string;
  profiles?: string;
  bootstrap: number;
  seed: number;
  apiKeyEnv: string;
  concurrency: number;
  maxRetries: number;
  timeout: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  progressInterval: number;
};

function parseDimensions(value: string): string[] {
  const dims = value.split(',').map((d) => d.trim()).filter(Boolean);
  const bad = dims.filter((d) => !ALL_DIMENSIONS.includes(d));
  if (dims.length === 0 || bad.length > 0) throw new UserError(`--dimensions: must be a comma-separated list of ${ALL_DIMENSIONS.join(', ')} (got ${JSON.stringify(value)})`);
  return [...new Set(dims)];
}

export function register(program: Command, io: DataIO = processIO): void {
  addClientOptions(
    program
      .command('score')
      .description('judge interviews with an LLM on memory, values, personality, hallucination and stability; writes scores.json, scores.md and bar charts')
      .requiredOption('--results <path...>', 'results files or folders: <Short>_<model>_result/*.json (single-turn), multiturn_<Short>_<model>_result/*.jsonl (multi-turn), or folders of them')
      .requiredOption('--judge-base-url <url>', 'the judge: an OpenAI-compatible chat endpoint, e.g. https://api.openai.com/v1')
      .requiredOption('--judge-model <name>', 'judge model name (the paper: gpt-3.5-turbo)')
      .addOption(new Option('--dimensions <list>', 'comma-separated; stability applies to multi-turn results only').argParser(parseDimensions).default(ALL_DIMENSIONS, ALL_DIMENSIONS.join(',')))
      .requiredOption('--out <dir>', 'output folder: judge.log.jsonl (resumable), scores.json, scores.md, scores-single.svg, scores-turns.svg')
      .option('--prompts <dir>', "folder of prompt_score_llm_<dimension>.txt judge prompts (default: the paper's, shipped)")
      .option('--profiles <dir>', "folder of wiki_<Short>.txt profiles, for characters beyond the paper's nine (the judge sees paragraph 0)")
      .addOption(integerOption('--bootstrap <n>', 'bootstrap resamples of the 95% intervals', { min: 1 }, 1000))
      .addOption(integerOption('--seed <n>', 'seed of the bootstrap', { min: 0 }, 0)),
    8,
  ).action(async (opts: ScoreCommandOptions) => {
    const code = await runScoreCommand(opts, io);
    if (code !== 0) io.setExitCode(code);
  });
}

export async function runScoreCommand(opts: ScoreCommandOptions, io: DataIO): Promise<number> {
  const { findResultsFiles, JUDGE_SETTINGS } = await import('../eval/judge.ts');
  const { runScore } = await import('../eval/score.ts');
  const { apiKeyFrom, retryPolicyOf } = await import('../eval/api.ts');
  const files = opts.results.flatMap((p) => findResultsFiles(resolve(p)));
  const seen = new Set<string>();
  const unique = files.filter((f) => !seen.has(f.path) && (seen.add(f.path), true));
  const outDir = resolve(opts.out);
  const report = await runScore({
    files: unique,
    dimensions: opts.dimensions as never,
    outDir,
    promptsDir: opts.prompts !== undefined ? resolve(opts.prompts) : undefined,
    profilesDir: opts.profiles !== undefined ? resolve(opts.profiles) : undefined,
    settings: {
      baseURL: opts.judgeBaseUrl,
      apiKey: apiKeyFrom(opts.apiKeyEnv, opts.judgeBaseUrl, '--judge-base-url'),
      model: opts.judgeModel,
      ...JUDGE_SETTINGS,
      timeoutMs: Math.round(opts.timeout * 1000),
    },
    retry: retryPolicyOf(opts),
    concurrency: opts.concurrency,
    resamples: opts.bootstrap,
    seed: opts.seed,
    progressStream: io.stderr,
    progressIntervalMs: opts.progressInterval * 1000,
  });
  const s = report.summary;
  const unparsed = report.scores.results.reduce((n, r) => n + r.unparsed, 0);
  const lines = [
    `${unique.length} results file(s), ${s.total} judge requests: ${s.done} sent this run, ${s.skipped} from earlier runs${s.failed ? `, ${s.failed} failed` : ''}`,
    ...(unparsed > 0 ? [`${unparsed} judge reply(s) without a score line (counted as unparsed, not scored)`] : []),
    `wrote ${report.paths.json}, ${report.paths.markdown}${report.paths.charts.map((c) => `, ${c}`).join('')}`,
  ];
  if (s.failed > 0) lines.push(`${s.failed} judge request(s) failed after all attempts (counted as missing); re-run the same command to retry them`);
  io.stdout.write(lines.map((l) => l + '\n').join(''));
  return s.failed > 0 ? EXIT_SOME_FAILED : 0;
}
