/**
 * `wgpu-char plan`: the GPU memory of a training run and of sampling, role by role, before
 * anything is allocated (src/train/plan.ts), for a model directory or a bare config.json.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { UserError } from '../errors.ts';
import { choiceOption, dtypeOption, integerOption, maxBatchOption, parseBytes, prefillChunkOption, type Dtype } from './options.ts';

interface PlanCliOptions {
  model?: string;
  config?: string;
  loraRank?: number;
  loraTargets?: string;
  batchSize: number;
  maxBatch: number;
  prefillChunk: number;
  maxLen?: number;
  dtype: Dtype;
  optimDtype: Dtype;
  checkpointing: boolean;
  gpuMemory?: number;
  bindingLimit?: number;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('plan')
    .description('print the GPU memory a training run and sampling need, by role, before allocating anything')
    .option('--model <dir>', 'a model directory (its config.json)')
    .option('--config <file>', 'a config.json alone (e.g. LLaMA-7B\'s, to plan before downloading it)')
    .addOption(integerOption('--lora-rank <r>', 'plan LoRA fine-tuning with this rank (default: full fine-tuning)', { min: 1 }))
    .option('--lora-targets <list>', 'comma list of adapted modules (default all seven projections)')
    .addOption(integerOption('--batch-size <n>', 'samples per micro-batch', { min: 1 }, 2))
    .addOption(integerOption('--max-len <n>', 'tokens per sample (default: the model\'s max_position_embeddings)', { min: 2 }))
    .addOption(dtypeOption())
    .option('--no-checkpointing', 'keep every layer\'s activations instead of recomputing them')
    .addOption(choiceOption('--optim-dtype <dtype>', 'Adam moments in f32 or bf16', ['f32', 'bf16'], 'f32'))
    .addOption(new Option('--gpu-memory <size>', 'fail (exit 1) when a plan exceeds this, e.g. 24GB or 16GiB').argParser(parseBytes('--gpu-memory')))
    .addOption(new Option('--binding-limit <size>', 'the largest storage binding (default: this device\'s maxStorageBufferBindingSize)').argParser(parseBytes('--binding-limit')))
    .addOption(maxBatchOption())
    .addOption(prefillChunkOption())
    .option('--json', 'one JSON line: {"train": {"total_bytes", <role>_bytes...}, "sample": {...}, "serve": {...}}')
    .action(async (opts: PlanCliOptions) => {
      const { loadLlamaConfig, readConfigFile } = await import('../formats/hf-config.ts');
      const { DEFAULT_LORA_TARGETS, isLoraModule } = await import('../model/lora.ts');
      const { planServing, planSampling, planTraining, formatBytes } = await import('../train/plan.ts');
      if ((opts.model === undefined) === (opts.config === undefined)) throw new UserError('plan: give one of --model DIR or --config FILE');
      const cfg = opts.model !== undefined ? loadLlamaConfig(opts.model) : readConfigFile(opts.config!);
      const targets = opts.loraTargets === undefined ? DEFAULT_LORA_TARGETS : opts.loraTargets.split(',').map((t) => t.trim());
      for (const t of targets) if (!isLoraModule(t)) throw new UserError(`--lora-targets: ${JSON.stringify(t)} is not one of ${DEFAULT_LORA_TARGETS.join(', ')}`);
      const lora = opts.loraRank === undefined ? undefined : { r: opts.loraRank, alpha: 2 * opts.loraRank, dropout: 0, targets: targets as typeof DEFAULT_LORA_TARGETS };
      let maxBindingBytes = opts.bindingLimit;
      if (maxBindingBytes === undefined) {
        const { acquireGpu } = await import('../node/dawn.ts');
        maxBindingBytes = (await acquireGpu()).maxBindingBytes;
      }
      const maxLen = opts.maxLen ?? cfg.max_position_embeddings;
      if (maxLen > cfg.max_position_embeddings) throw new UserError(`--max-len ${maxLen} exceeds the model's max_position_embeddings ${cfg.max_position_embeddings}`);
      const train = planTraining(cfg, { dtype: opts.dtype, optimDtype: opts.optimDtype, maxLen, batch: opts.batchSize, checkpointing: opts.checkpointing, lora, maxBindingBytes });
      const sample = planSampling(cfg, { dtype: opts.dtype, context: cfg.max_position_embeddings, lora, maxBindingBytes });
      const serve = planServing(cfg, { dtype: opts.dtype, context: cfg.max_position_embeddings, lora, maxBindingBytes, slots: opts.maxBatch, prefillChunk: opts.prefillChunk });
      if (opts.json) {
        const asJson = (p: Record<string, number>) => Object.fromEntries([['total_bytes', p.total], ...Object.entries(p).filter(([k]) => k !== 'total').map(([k, v]) => [`${k}_bytes`, v])]);
        console.log(JSON.stringify({ train: asJson(train), sample: asJson(sample), serve: asJson(serve) }));
      } else {
        const what = `${lora ? `LoRA r ${lora.r} (${targets.join(',')})` : 'full fine-tuning'}, ${opts.dtype} weights, ${opts.batchSize} × ${maxLen} tokens, ${opts.checkpointing ? 'checkpointing' : 'no checkpointing'}; sampling (chat, generate) with a ${cfg.max_position_embeddings}-token context; serve with ${opts.maxBatch} slots of that context and ${opts.prefillChunk}-token prefill chunks; bindings of at most ${formatBytes(maxBindingBytes)}`;
        console.log(`plan: ${what}`);
        const roles = [...new Set([...Object.keys(train), ...Object.keys(sample), ...Object.keys(serve)])].filter((k) => k !== 'total');
        const cell = (p: Record<string, number>, r: string) => (p[r] ? formatBytes(p[r]) : '-').padStart(12);
        console.log(`${'role'.padEnd(22)}${'train'.padStart(12)}${'sample'.padStart(12)}${'serve'.padStart(12)}`);
        for (const r of roles) console.log(`${r.padEnd(22)}${cell(train, r)}${cell(sample, r)}${cell(serve, r)}`);
        console.log(`${'total'.padEnd(22)}${cell(train, 'total')}${cell(sample, 'total')}${cell(serve, 'total')}`);
      }
      if (opts.gpuMemory !== undefined) {
        if (train.total > opts.gpuMemory) {
          throw new UserError(`plan: training needs ${formatBytes(train.total)}, more than --gpu-memory ${formatBytes(opts.gpuMemory)}: ${lora ? 'lower --lora-rank' : 'use --lora-rank'}, a smaller --batch-size or --max-len${opts.dtype === 'f32' ? ', or --dtype bf16' : ''}`);
        }
        if (sample.total > opts.gpuMemory) throw new UserError(`plan: sampling needs ${formatBytes(sample.total)}, more than --gpu-memory ${formatBytes(opts.gpuMemory)}`);
      }
    });
}
