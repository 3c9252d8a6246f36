/**
 * `wgpu-char apply-delta`: recovers released fine-tuned weights from a weight diff and the base
 * model (target = base + delta), or with --reverse makes such a diff (delta = target − base), with
 * FastChat's f16 arithmetic; src/formats/weight-delta.ts has the details. Either side may be
 * safetensors or PyTorch .bin (one file or shards + index).
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { parseBytes } from './options.ts';

interface ApplyDeltaCliOptions {
  base: string;
  delta: string;
  out: string;
  reverse?: boolean;
  maxShardSize?: number;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command('apply-delta')
    .description('recover fine-tuned weights from a released weight diff: OUT = BASE + DELTA in f16 as FastChat does (--reverse: OUT = DELTA − BASE, making a diff)')
    .requiredOption('--base <dir>', 'the base model (e.g. LLaMA-7B in HF layout): safetensors or pytorch_model*.bin')
    .requiredOption('--delta <dir>', 'the weight diff (with --reverse: the fine-tuned model); its config.json and tokenizer files are copied to --out')
    .requiredOption('--out <dir>', 'a new (or empty) directory: F16 safetensors shards + index, config.json, tokenizer files')
    .option('--reverse', 'write delta = target − base, with the target given as --delta')
    .addOption(new Option('--max-shard-size <size>', 'largest safetensors shard, e.g. 5GB (default) or 2GiB').argParser(parseBytes('--max-shard-size')))
    .option('--quiet', 'no progress on stderr')
    .action(async (opts: ApplyDeltaCliOptions) => {
      const { applyDelta } = await import('../formats/weight-delta.ts');
      const { formatBytes } = await import('../util/bytes.ts');
      const started = Date.now();
      const r = await applyDelta({
        base: opts.base, delta: opts.delta, out: opts.out, reverse: opts.reverse, maxShardBytes: opts.maxShardSize,
        // A progress line on a terminal only: redirected stderr would get one line per tensor.
        onTensor: opts.quiet || !process.stderr.isTTY ? undefined : (name, i, n) => process.stderr.write(`\rwgpu-char: apply-delta ${i + 1}/${n} ${name}\x1b[K`),
      });
      if (!opts.quiet && process.stderr.isTTY) process.stderr.write('\n');
      console.log(`${opts.out}: ${r.tensors} tensors, ${formatBytes(r.bytes)} F16 (${opts.reverse ? 'target − base' : 'base + delta'}) in ${((Date.now() - started) / 1000).toFixed(1)} s; files: ${r.files.join(', ')}`);
    });
}
