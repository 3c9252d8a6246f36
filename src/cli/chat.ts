/** `wgpu-char chat`: an interactive conversation with a character; lines come from stdin when it is not a TTY. */
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { addSamplingOptions, checkDecodeSettings, type SamplingOptions, adapterOption } from './options.ts';

interface ChatCliOptions extends SamplingOptions {
  adapter?: string;
  model: string;
  character: string;
  fullName?: string;
  location: string;
  status?: string;
  userName: string;
}

export function register(program: Command): void {
  addSamplingOptions(
    program
      .command('chat')
      .description('talk with a character: interactive, streams tokens; reads lines from stdin when it is not a TTY')
      .requiredOption('--model <dir>', 'HF LLaMA directory (config.json, tokenizer.model, *.safetensors)')
      .requiredOption('--character <name>', 'short name, as in the turns (e.g. Beethoven)')
      .option('--full-name <name>', 'full name for the meta prompt (known for the paper\'s characters)')
      .option('--location <text>', 'the scene\'s location and time', 'Coffee Shop - Afternoon')
      .option('--status <text>', 'the character\'s status (default: casually chatting with a man from the 21st century)')
      .option('--user-name <name>', 'your speaker name in the turns', 'Man')
      .addOption(adapterOption()),
    { temperature: 0.5, maxNewTokens: 256 },
  ).action(async (opts: ChatCliOptions) => {
    if (opts.character.trim() === '') throw new UserError('--character: must not be empty');
    if (opts.userName.trim() === '') throw new UserError('--user-name: must not be empty');
    // The settings against the model's config.json first: no GPU code is loaded (nor anything printed) for a mistake.
    const context = checkDecodeSettings(opts);
    // GPU code loads only when the command runs: `--help` and `data` need none of it.
    const { loadModelDir } = await import('../formats/model-dir.ts');
    const { runChat } = await import('../gen/chat.ts');
    const { gpu, model, tokenizer } = await loadModelDir(opts.model, opts.dtype, { adapter: opts.adapter });
    await runChat({ gpu, model, tokenizer, opts: { ...opts, context } });
  });
}
