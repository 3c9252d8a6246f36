/**
 * `wgpu-char chat`: an interview with a character. Each user line becomes a `Man (speaking)`
 * turn; the prompt is rebuilt as the paper's LocalCharacter does (chat-prompt.ts) and the reply is
 * streamed as it is sampled, without the `(speaking):` tag the model writes first. Reads lines from
 * stdin when it is not a TTY, so a chat can be scripted: `printf 'Hello\n' | wgpu-char chat ...`.
 */
import { createInterface } from 'node:readline';
import type { Gpu } from '../gpu/device.ts';
import type { Tokenizer } from '../data/tokenizer.ts';
import type { LlamaModel } from '../model/llama.ts';
import { EOT, type Turn } from '../data/prompted.ts';
import { buildChatPrompt, parseCompletion, ReplyText, type ChatSetting } from './chat-prompt.ts';
import { defaultStatus, fullNameOf } from './characters.ts';
import { Generator } from './generate.ts';

export interface ChatOptions {
  character: string;
  fullName?: string;
  location: string;
  status?: string;
  userName: string;
  temperature: number;
  topP: number;
  repetitionPenalty?: number;
  maxNewTokens: number;
  seed: number;
  context?: number;
}

export async function runChat(args: { gpu: Gpu; model: LlamaModel; tokenizer: Tokenizer; opts: ChatOptions }): Promise<void> {
  const { model, tokenizer, opts } = args;
  const setting: ChatSetting = {
    shortName: opts.character,
    fullName: fullNameOf(opts.character, opts.fullName),
    location: opts.location,
    status: opts.status ?? defaultStatus(opts.character),
  };
  const gen = await Generator.create(model, tokenizer, { contextLength: opts.context });
  const interactive = process.stdin.isTTY === true;
  const history: Turn[] = [];
  const rl = createInterface({ input: process.stdin, terminal: interactive });
  if (interactive) {
    console.error(`Chatting with ${setting.fullName} (${setting.location}). Empty line or Ctrl-D to quit.`);
    process.stdout.write(`${opts.userName}: `);
  }
  let turn = 0;
  for await (const line of rl) {
    const question = line.trim();
    if (question === '') {
      if (interactive) break;
      continue;
    }
    if (!interactive) console.log(`${opts.userName}: ${question}`);
    history.push({ role: opts.userName, action: '(speaking)', content: question });
    const prompt = buildChatPrompt(setting, history);
    const head = new ReplyText();
    process.stdout.write(`${setting.shortName}: `);
    const r = await gen.generate(prompt, {
      maxNewTokens: opts.maxNewTokens,
      temperature: opts.temperature,
      topP: opts.topP,
      repetitionPenalty: opts.repetitionPenalty,
      seed: opts.seed + turn++,
      stop: [EOT],
      stopOnSpeakerTag: true,
      onText: (t) => process.stdout.write(head.push(t)),
    });
    process.stdout.write(head.flush() + '\n');
    history.push(parseCompletion(setting.shortName, r.text));
    if (interactive) process.stdout.write(`${opts.userName}: `);
  }
  rl.close();
  gen.destroy();
}
