/** `wgpu-char eval`: mean NLL per target token and perplexity of a prompted SFT file, with the training loss masking. */
import type { Command } from 'commander';
import { dtypeOption, integerOption, type Dtype } from './options.ts';

interface EvalCliOptions {
  model: string;
  data: string;
  maxLen: number;
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
    .addOption(integerOption('--max-len <n>', 'truncate samples to this many tokens', { min: 2 }, 2048))
    .addOption(integerOption('--batch-size <n>', 'sequences per forward (padded to the longest)', { min: 1 }, 4))
    .option('--json', 'print one line {"nll":..,"ppl":..,"tokens":..}')
    .addOption(dtypeOption())
    .action(async (opts: EvalCliOptions) => {
      // GPU code loads only when the command runs: `--help` and `data` need none of it.
      const { readPromptedFile } = await import('../formats/prompted-file.ts');
      const { evaluateSamples } = await import('../model/evaluate.ts');
      const { loadModelDir } = await import('../formats/model-dir.ts');
      const samples = readPromptedFile(opts.data);
      const { model, tokenizer } = await loadModelDir(opts.model, opts.dtype, { quiet: !!opts.json });
      const maxLen = Math.min(opts.maxLen, model.maxPositions);
      const r = await evaluateSamples(model, tokenizer, samples, maxLen, (done, total) => {
        if (process.stderr.isTTY) process.stderr.write(`\reval ${done}/${total}`);
      }, opts.batchSize, (note) => console.error(`wgpu-char: note: ${note}`));
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (r.skipped > 0) console.error(`wgpu-char: skipped ${r.skipped} sample(s) whose prompt alone exceeds --max-len ${maxLen}`);
      if (opts.json) console.log(JSON.stringify({ nll: r.nll, ppl: r.ppl, tokens: r.tokens }));
      else console.log(`nll ${r.nll.toFixed(6)}  ppl ${r.ppl.toFixed(4)}  tokens ${r.tokens}  samples ${r.samples}${r.truncated ? `  truncated ${r.truncated}` : ''}`);
    });
}
