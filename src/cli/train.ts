/**
 * `wgpu-char train`: supervised fine-tuning of a LLaMA on a prompted file, with the Character-LLM
 * paper's data handling and hyper-parameters as defaults (README.md, Training). On one device the
 * effective batch is batch × accum = 8 sequences, where the paper's was 64.
 *
 *   wgpu-char train --data prompted_Beethoven.jsonl --model weights/llama-7b --out runs/beethoven
 *   wgpu-char train --resume runs/beethoven            (latest checkpoint; or name a checkpoint-<step> dir)
 *
 * The run directory is locked while a run owns it (OUT/.train.lock); one holding a run is refused
 * unless --resume or --overwrite (src/train/rundir.ts says what --overwrite removes).
 * Exit codes: 0 done, 1 user error (a bad input, a locked directory, a full disk), 130 stopped by
 * Ctrl-C after saving a checkpoint. The run itself is src/train/run.ts.
 */
import type { Command } from 'commander';
import type { TrainCliOptions } from '../train/run.ts';
import { choiceOption, dtypeOption, integerOption, numberOption, parseBytes } from './options.ts';
import { Option } from 'commander';

export function register(program: Command): void {
  program
    .command('train')
    .description('fine-tune a LLaMA on a prompted SFT file (loss on the output only, as the paper); checkpoints, exact resume, loss.svg')
    .option('--data <file>', 'prompted file: JSON array or JSONL of {prompt, output}')
    .option('--model <dir>', 'HF LLaMA directory to start from (config.json, tokenizer.model, *.safetensors)', 'weights/tiny')
    .option('--out <dir>', 'run directory: final model, checkpoint-<step>/, train_log.jsonl, loss.svg (required unless --resume)')
    .option('--log <file>', 'JSONL log, one line per optimizer step and per eval (default OUT/train_log.jsonl)')
    .addOption(integerOption('--max-len <n>', 'truncate samples to this many tokens (right end cut)', { min: 2 }, 2048))
    .addOption(numberOption('--eval-ratio <r>', 'held-out fraction for the per-epoch eval loss (seeded split; 0 = none)', { min: 0, max: 1 }, 0.02))
    .addOption(integerOption('--seed <n>', 'seed of the split and of the epoch shuffles', { min: 0 }, 42))
    .option('--no-shuffle', 'keep file order in every epoch')
    .addOption(integerOption('--batch-size <n>', 'samples per micro-batch', { min: 1 }, 2))
    .addOption(integerOption('--grad-accum <n>', 'micro-batches per optimizer step', { min: 1 }, 4))
    .addOption(integerOption('--epochs <n>', 'passes over the training samples', { min: 1 }, 10))
    .addOption(integerOption('--max-steps <n>', 'stop after n optimizer steps; also the schedule\'s total (0 = epochs × steps per epoch)', { min: 0 }, 0))
    .addOption(numberOption('--lr <lr>', 'peak learning rate', { min: 0 }, 2e-5))
    .addOption(numberOption('--weight-decay <wd>', 'AdamW weight decay (not on norm weights)', { min: 0 }, 0.1))
    .addOption(numberOption('--warmup-ratio <r>', 'linear warmup over ceil(r × total steps)', { min: 0, max: 1 }, 0.04))
    .addOption(choiceOption('--lr-scheduler <kind>', 'learning-rate schedule after warmup', ['cosine', 'constant'], 'cosine'))
    .addOption(numberOption('--max-grad-norm <n>', 'clip the global gradient norm to this', { min: 0, minExclusive: true }, 1.0))
    .addOption(dtypeOption('weights in the forward/backward: bf16 (f32 masters and accumulation) or f32'))
    .option('--checkpointing', 'gradient checkpointing: recompute activations in the backward', true)
    .option('--no-checkpointing', 'keep all activations (more memory, faster)')
    .option('--save-every-epoch', 'write OUT/checkpoint-<step>/ at the end of every epoch', false)
    .addOption(integerOption('--save-steps <n>', 'also write OUT/checkpoint-<step>/ at every multiple of n optimizer steps (0 = never)', { min: 0 }, 0))
    .addOption(integerOption('--save-total-limit <n>', 'after each save, remove the oldest checkpoint-<step>/ beyond n (never the one resumed from; 0 = keep all)', { min: 0 }, 0))
    .addOption(integerOption('--lora-rank <r>', 'train a LoRA adapter of rank r on the frozen --model (HF PEFT\'s format in OUT; default: full fine-tuning)', { min: 1 }))
    .addOption(numberOption('--lora-alpha <a>', 'LoRA alpha: the adapter is scaled by alpha / r (default 2 × rank)', { min: 0, minExclusive: true }))
    .addOption(numberOption('--lora-dropout <p>', 'dropout on each adapted projection\'s input (default 0.05)', { min: 0, max: 0.95 }))
    .option('--lora-targets <list>', 'comma list of adapted modules (default q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)')
    .option('--adapter <dir>', 'start from this LoRA adapter (PEFT format); its adapter_config.json fixes rank, alpha, dropout and targets')
    .option('--merge', 'with LoRA: also write OUT/merged/, the base with the adapter merged in (a full HF checkpoint for llama.cpp, Ollama, vLLM)')
    .option('--resume <dir>', 'continue exactly from a checkpoint-<step> directory, or from the latest one in a run directory; writes into that run directory (or --out)')
    .option('--overwrite', 'replace the run already in --out: its model, log, loss.svg, eval_data.jsonl and checkpoints are removed (once every input is checked); other files stay')
    .addOption(choiceOption('--optim-dtype <dtype>', 'Adam moments: f32 (torch\'s) or bf16 (stochastic rounding; 14 instead of 18 bytes a parameter for full fine-tuning; bench/optim-dtype.ts measures the effect)', ['f32', 'bf16'], 'f32'))
    .addOption(new Option('--gpu-memory <size>', 'refuse to start when the memory plan exceeds this, e.g. 24GB (default on a software adapter: the host\'s free memory)').argParser(parseBytes('--gpu-memory')))
    .addOption(integerOption('--progress-every <n>', 'when stderr is not a TTY, print the progress line every n steps', { min: 1 }, 10))
    .action(async (opts: TrainCliOptions, cmd: Command) => {
      const { runTrainCommand } = await import('../train/run.ts');
      // On resume, only the options given on the command line override the checkpoint's arguments.
      const code = await runTrainCommand(opts, (k) => {
        const src = cmd.getOptionValueSource(k);
        return src !== undefined && src !== 'default';
      });
      if (code !== 0) process.exit(code);
    });
}
