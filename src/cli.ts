/**
 * The `wgpu-char` command. Subcommands: info, chat, generate, eval, train, serve, data.
 * A UserError (bad file, bad option, unreachable API) prints one line and exits 1; anything else
 * is a bug and prints its stack.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { UserError } from './errors.ts';
import { registerDataCommands } from './data/pipeline/cli.ts';
import { registerServeCommand } from './gen/serve-cli.ts';
import { registerTrainCommand } from './train/cli.ts';

function num(name: string, min?: number, max?: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || (min !== undefined && n < min) || (max !== undefined && n > max)) {
      throw new InvalidArgumentError(`${name} must be a number${min !== undefined ? ` ≥ ${min}` : ''}${max !== undefined ? ` ≤ ${max}` : ''}`);
    }
    return n;
  };
}
function int(name: string, min = 0) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

const dtypeOption = () => new Option('--dtype <dtype>', 'weights on the GPU: bf16 (default, f32 accumulate) or f32 (exact)').choices(['bf16', 'f32']).default('bf16');

/** Loads GPU, model and tokenizer (lazily imported: `--help` and `data` need no GPU code). */
async function loadModel(dir: string, dtype: 'bf16' | 'f32', quiet = false) {
  const { loadModelDir } = await import('./formats/model-dir.ts');
  return loadModelDir(dir, dtype, { quiet });
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('wgpu-char')
    .description('Train and chat with role-playing Character-LLMs (LLaMA) in WGSL on WebGPU')
    .showHelpAfterError();

  program
    .command('info')
    .description('print the WebGPU adapter, backend and limits, and whether it is a software adapter')
    .option('--json', 'one JSON object')
    .action(async (opts: { json?: boolean }) => {
      const { acquireGpu } = await import('./gpu/device.ts');
      const gpu = await acquireGpu();
      const r = gpu.report;
      if (opts.json) {
        console.log(JSON.stringify(r));
        return;
      }
      console.log(`adapter:      ${r.description}`);
      console.log(`vendor:       ${r.vendor}`);
      console.log(`architecture: ${r.architecture}`);
      console.log(`backend:      ${r.backend}`);
      console.log(`software:     ${r.isSoftware ? 'yes (CPU emulation: slow, but exact)' : 'no'}`);
      console.log(`subgroups:    ${gpu.hasSubgroups ? `yes (size ${r.subgroupSize ?? '?'})` : 'no'}`);
      console.log(`features:     ${r.features.join(', ')}`);
      console.log('limits:');
      for (const [k, v] of Object.entries(r.limits)) console.log(`  ${k}: ${v}`);
    });

  const samplingOptions = (cmd: Command, defaults: { temperature: number; maxNew: number }) =>
    cmd
      .option('--temperature <t>', 'sampling temperature (< 1e-5 = greedy)', num('--temperature', 0, 2), defaults.temperature)
      .option('--top-p <p>', 'nucleus sampling mass (1 = off)', num('--top-p', 0, 1), 0.95)
      .option('--repetition-penalty <r>', 'HF/FastChat repetition penalty on every context token (1 = off; 1.1-1.3 curbs loops)', num('--repetition-penalty', 0.01, 10), 1)
      .option('--max-new-tokens <n>', 'tokens to generate at most', int('--max-new-tokens', 1), defaults.maxNew)
      .option('--seed <n>', 'random seed of the sampler', int('--seed'), 42)
      .option('--context <n>', 'context length in tokens (default: the model\'s max_position_embeddings)', int('--context', 2))
      .addOption(dtypeOption());

  samplingOptions(
    program
      .command('chat')
      .description('talk with a character: interactive, streams tokens; reads lines from stdin when it is not a TTY')
      .requiredOption('--model <dir>', 'HF LLaMA directory (config.json, tokenizer.model, *.safetensors)')
      .requiredOption('--character <name>', 'short name, as in the turns (e.g. Beethoven)')
      .option('--full-name <name>', 'full name for the meta prompt (known for the paper\'s characters)')
      .option('--location <text>', 'the scene\'s location and time', 'Coffee Shop - Afternoon')
      .option('--status <text>', 'the character\'s status (default: casually chatting with a man from the 21st century)')
      .option('--user-name <name>', 'your speaker name in the turns', 'Man'),
    { temperature: 0.5, maxNew: 256 },
  ).action(async (opts) => {
    const { runChat } = await import('./gen/chat.ts');
    const { gpu, model, tokenizer } = await loadModel(opts.model, opts.dtype);
    await runChat({ gpu, model, tokenizer, opts });
  });

  samplingOptions(
    program
      .command('generate')
      .description('one completion of a prompt, printed to stdout (BOS is prepended)')
      .requiredOption('--model <dir>', 'HF LLaMA directory')
      .option('--prompt <text>', 'the prompt')
      .option('--prompt-file <file>', 'read the prompt from a file')
      .option('--stop <text...>', 'stop strings (cut from the output)')
      .option('--stats', 'print token counts and tokens/s to stderr'),
    { temperature: 0.5, maxNew: 128 },
  ).action(async (opts) => {
    if ((opts.prompt === undefined) === (opts.promptFile === undefined)) throw new UserError('give exactly one of --prompt or --prompt-file');
    let prompt: string = opts.prompt;
    if (opts.promptFile) {
      if (!existsSync(opts.promptFile)) throw new UserError(`${opts.promptFile}: no such file`);
      prompt = readFileSync(opts.promptFile, 'utf8');
    }
    const { Generator } = await import('./gen/generate.ts');
    const { model, tokenizer } = await loadModel(opts.model, opts.dtype, !opts.stats);
    const gen = await Generator.create(model, tokenizer, { contextLength: opts.context });
    const r = await gen.generate(prompt, {
      maxNewTokens: opts.maxNewTokens,
      temperature: opts.temperature,
      topP: opts.topP,
      seed: opts.seed,
      repetitionPenalty: opts.repetitionPenalty,
      stop: opts.stop ?? [],
      stopOnSpeakerTag: false,
      onText: (t) => process.stdout.write(t),
    });
    process.stdout.write('\n');
    if (opts.stats) {
      console.error(`prompt ${r.promptTokens} tokens, generated ${r.newTokens} (${r.finishReason}); prefill ${(r.promptTokens / r.prefillSeconds).toFixed(1)} tok/s, decode ${(r.newTokens / r.decodeSeconds).toFixed(1)} tok/s`);
    }
  });

  program
    .command('eval')
    .description('mean NLL per target token and perplexity of a prompted SFT file (the paper\'s loss masking)')
    .requiredOption('--model <dir>', 'HF LLaMA directory')
    .requiredOption('--data <file>', 'prompted file: JSON array or JSONL of {prompt, output}')
    .option('--max-len <n>', 'truncate samples to this many tokens', int('--max-len', 2), 2048)
    .option('--batch-size <n>', 'sequences per forward (padded to the longest)', int('--batch-size', 1), 4)
    .option('--json', 'print one line {"nll":..,"ppl":..,"tokens":..}')
    .addOption(dtypeOption())
    .action(async (opts) => {
      const { readPromptedFile } = await import('./data/sft.ts');
      const { evaluateSamples } = await import('./model/evaluate.ts');
      const samples = readPromptedFile(opts.data);
      const { model, tokenizer } = await loadModel(opts.model, opts.dtype, !!opts.json);
      const maxLen = Math.min(opts.maxLen, model.maxPositions);
      const r = await evaluateSamples(model, tokenizer, samples, maxLen, (done, total) => {
        if (process.stderr.isTTY) process.stderr.write(`\reval ${done}/${total}`);
      }, opts.batchSize);
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (r.skipped > 0) console.error(`wgpu-char: skipped ${r.skipped} sample(s) whose prompt alone exceeds --max-len ${maxLen}`);
      if (opts.json) console.log(JSON.stringify({ nll: r.nll, ppl: r.ppl, tokens: r.tokens }));
      else console.log(`nll ${r.nll.toFixed(6)}  ppl ${r.ppl.toFixed(4)}  tokens ${r.tokens}  samples ${r.samples}${r.truncated ? `  truncated ${r.truncated}` : ''}`);
    });

  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  registerDataCommands(program);
  registerTrainCommand(program);
  registerServeCommand(program);
  try {
    await program.parseAsync(process.argv);
    // Dawn keeps the event loop alive while a device exists: exit explicitly when done, keeping
    // a code a command set (the data pipeline exits 2 when some items failed).
    process.exit(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof UserError) {
      console.error(`wgpu-char: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}

await main();
