/**
 * `wgpu-char export`: a model directory (optionally with a LoRA adapter merged in) as one GGUF
 * file, so a trained character runs in llama.cpp, Ollama and LM Studio; `--ollama` also writes a
 * Modelfile beside it. Runs on the CPU only: no GPU code is loaded.
 */
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { chatSettingOf, DEFAULT_USER_NAME } from '../gen/chat-prompt.ts';
import { adapterOption, choiceOption } from './options.ts';

interface ExportCliOptions {
  model: string;
  adapter?: string;
  format: 'gguf';
  out: string;
  dtype: 'f32' | 'f16' | 'bf16' | 'q8_0';
  ollama?: boolean;
  character?: string;
  fullName?: string;
  location?: string;
  status?: string;
  userName: string;
}

/** `wgpu-char chat`'s sampling defaults, which the Modelfile carries. */
const CHAT_TEMPERATURE = 0.5;
const CHAT_TOP_P = 0.95;

export function register(program: Command): void {
  program
    .command('export')
    .description('write a model (and a merged LoRA adapter) as a GGUF file for llama.cpp, Ollama and LM Studio')
    .requiredOption('--model <dir>', 'HF LLaMA directory (config.json, tokenizer.model, *.safetensors)')
    .addOption(adapterOption())
    .addOption(choiceOption('--format <format>', 'output format', ['gguf'] as const, 'gguf'))
    .requiredOption('--out <file>', 'the .gguf file to write')
    .addOption(choiceOption('--dtype <dtype>', 'weight matrices in f32, f16, bf16 or q8_0 (8-bit blocks of 32, llama.cpp\'s Q8_0); norms stay f32', ['f32', 'f16', 'bf16', 'q8_0'] as const, 'f16'))
    .option('--ollama', 'also write an Ollama Modelfile beside the GGUF (needs --character)')
    .option('--character <name>', 'for --ollama: the character\'s short name, as in the turns (e.g. Beethoven)')
    .option('--full-name <name>', 'for --ollama: full name for the meta prompt (known for the paper\'s characters)')
    .option('--location <text>', 'for --ollama: the scene\'s location and time (default: Coffee Shop - Afternoon)')
    .option('--status <text>', 'for --ollama: the character\'s status (default: casually chatting with a man from the 21st century)')
    .option('--user-name <name>', 'for --ollama: the user\'s speaker name in the turns', DEFAULT_USER_NAME)
    .action(async (opts: ExportCliOptions) => {
      if (opts.ollama && (opts.character === undefined || opts.character.trim() === '')) throw new UserError('--ollama: needs --character NAME (the character the Modelfile chats as)');
      if (!opts.ollama && opts.character !== undefined) throw new UserError('--character: only used with --ollama');
      const { exportLlamaGguf } = await import('../formats/gguf-llama.ts');
      const r = exportLlamaGguf({ model: opts.model, adapter: opts.adapter, out: opts.out, dtype: opts.dtype });
      console.error(`wgpu-char: wrote ${opts.out}: ${r.tensors} tensors, ${opts.dtype}, ${(r.bytes / 2 ** 20).toFixed(1)} MiB`);
      if (opts.ollama) {
        const { ollamaModelfile } = await import('../formats/modelfile.ts');
        const file = path.join(path.dirname(opts.out), 'Modelfile');
        const setting = chatSettingOf({ name: opts.character!, full_name: opts.fullName, location: opts.location, status: opts.status });
        let text: string;
        try {
          text = ollamaModelfile({ gguf: path.basename(opts.out), setting, userName: opts.userName, temperature: CHAT_TEMPERATURE, topP: CHAT_TOP_P });
        } catch (e) {
          throw new UserError(`--ollama: ${(e as Error).message}: cannot be written into a Modelfile`);
        }
        try {
          writeFileSync(file, text);
        } catch (e) {
          throw new UserError(`${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        }
        console.error(`wgpu-char: wrote ${file}: ollama create ${opts.character!.toLowerCase()} -f ${file}`);
      }
    });
}
