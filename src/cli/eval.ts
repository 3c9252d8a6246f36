/** `wgpu-char eval`: mean NLL per target token and perplexity of a prompted SFT file, with the training loss masking. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { dtypeOption, integerOption, type Dtype, adapterOption } from './options.ts';

/** The paper's max length, the default of --max-len when the model allows it. */
const DEFAULT_MAX_LEN = 2048;

interface EvalCliOptions {
  adapter?: string;
  model: string;
  data: string;
  maxLen?: number;
  batchSize: number;
  json?: boolean;
  dtype: Dtype;
}

export function register(program: Command): void {
  program
    .command('eval')
    .description('mean NLL per target token and perplexity of a prompted SFT file (the paper\'s loss masking)')
    .requiredOption('--model <dir>', 'HF LLaMA directory')
    .requiredOption('--data <file>', 'prompted file: JSON array or JSONL of {prompt, output}')
    .addOption(integerOption('--max-len <n>', 'truncate samples to this many tokens (default: 2048, or the model\'s max_position_embeddings if smaller)', { min: 2 }))
    .addOption(integerOption('--batch-size <n>', 'sequences per forward (padded to the longest)', { min: 1 }, 4))
    .option('--json', 'print one line {"nll":..,"ppl":..,"tokens":..}')
    .addOption(dtypeOption())
    .addOption(adapterOption())
    .action(async (opts: EvalCliOptions) => {
      const { readPromptedFile } = await import('../formats/prompted-file.ts');
      const { loadLlamaConfig } = await import('../formats/hf-config.ts');
      if (!existsSync(opts.model)) throw new UserError(`${opts.model}: no such model directory`);
      const samples = readPromptedFile(opts.data);
      const maxLen = resolveMaxLen(opts.maxLen, loadLlamaConfig(opts.model).max_position_embeddings);
      // GPU code loads only when the command runs: `--help` and `data` need none of it.
      const { evaluateSamples, tokenizeEvalSamples } = await import('../model/evaluate.ts');
      const { loadModelDir } = await import('../formats/model-dir.ts');
      let set: ReturnType<typeof tokenizeEvalSamples> | undefined;
      const { model, tokenizer } = await loadModelDir(opts.model, opts.dtype, {
        quiet: !!opts.json,
        adapter: opts.adapter,
        // Before the GPU starts: a file with nothing to score is one line naming it.
        check: ({ tokenizer }) => {
          set = tokenizeEvalSamples(tokenizer, samples, maxLen);
          if (set.tokens === 0) {
            throw new UserError(`${opts.data}: no sample fits --max-len ${maxLen}: the prompts of all ${set.total} sample(s) are ` +
              `${maxLen} tokens or more (BOS included), leaving no output token to score`);
          }
        },
      });
      if (set!.skipped > 0) console.error(`wgpu-char: skipped ${set!.skipped} sample(s) whose prompt alone exceeds --max-len ${maxLen}`);
      const r = await evaluateSamples(model, tokenizer, set!, maxLen, (done, total) => {
        if (process.stderr.isTTY) process.stderr.write(`\reval ${done}/${total}`);
      }, opts.batchSize, (note) => console.error(`wgpu-char: note: ${note}`));
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (opts.json) console.log(JSON.stringify({ nll: r.nll, ppl: r.ppl, tokens: r.tokens }));
      else console.log(`nll ${r.nll.toFixed(6)}  ppl ${r.ppl.toFixed(4)}  tokens ${r.tokens}  samples ${r.samples}${r.truncated ? `  truncated ${r.truncated}` : ''}`);
    });
}

/** --max-len: as given, but the model's maximum when larger (said once); by default 2048 or the model's maximum. */
function resolveMaxLen(requested: number | undefined, maxPositions: number): number {
  if (requested === undefined) return Math.min(DEFAULT_MAX_LEN, maxPositions);
  if (requested > maxPositions) {
    console.error(`wgpu-char: --max-len ${requested} exceeds the model's max_position_embeddings ${maxPositions}: using ${maxPositions}`);
    return maxPositions;
  }
  return requested;
}
