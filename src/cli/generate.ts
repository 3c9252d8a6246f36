/** `wgpu-char generate`: one completion of a prompt (BOS prepended), streamed to stdout. */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { addSamplingOptions, checkDecodeSettings, type SamplingOptions, adapterOption } from './options.ts';

interface GenerateCliOptions extends SamplingOptions {
  adapter?: string;
  model: string;
  prompt?: string;
  promptFile?: string;
  stop?: string[];
  stats?: boolean;
}

export function register(program: Command): void {
  addSamplingOptions(
    program
      .command('generate')
      .description('one completion of a prompt, printed to stdout (BOS is prepended)')
      .requiredOption('--model <dir>', 'HF LLaMA directory')
      .option('--prompt <text>', 'the prompt')
      .option('--prompt-file <file>', 'read the prompt from a file')
      .option('--stop <text...>', 'stop strings (cut from the output)')
      .option('--stats', 'print token counts and tokens/s to stderr')
      .addOption(adapterOption()),
    { temperature: 0.5, maxNewTokens: 128 },
  ).action(async (opts: GenerateCliOptions) => {
    if ((opts.prompt === undefined) === (opts.promptFile === undefined)) throw new UserError('give exactly one of --prompt or --prompt-file');
    if (opts.stop?.includes('')) throw new UserError('--stop: must not be empty (an empty stop string matches at once: the output would be empty)');
    let prompt = opts.prompt ?? '';
    if (opts.promptFile !== undefined) {
      if (!existsSync(opts.promptFile)) throw new UserError(`${opts.promptFile}: no such file`);
      try {
        prompt = readFileSync(opts.promptFile, 'utf8');
      } catch (e) {
        throw new UserError(`${opts.promptFile}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
    }
    // The settings against the model's config.json first: no GPU code is loaded for a mistake.
    const context = checkDecodeSettings(opts);
    // GPU code loads only when the command runs: `--help` and `data` need none of it.
    const { loadModelDir } = await import('../formats/model-dir.ts');
    const { Generator } = await import('../gen/generate.ts');
    const { model, tokenizer } = await loadModelDir(opts.model, opts.dtype, { quiet: !opts.stats, adapter: opts.adapter });
    const gen = await Generator.create(model, tokenizer, { contextLength: context });
    const r = await gen.generate(prompt, {
      onPromptCut: ({ total, kept }) => console.error(`wgpu-char: the prompt is ${total} tokens: keeping BOS and its last ${kept - 1}, ` +
        `to leave room for --max-new-tokens ${opts.maxNewTokens} in the ${context}-token context`),
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
}
