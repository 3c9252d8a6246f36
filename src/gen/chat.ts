/**
 * `wgpu-char chat`: an interview with a character. Each user line becomes a `Man (speaking)`
 * turn; the prompt is rebuilt as the paper's LocalCharacter does (chat-prompt.ts) and the reply is
 * streamed as it is sampled, without the `(speaking):` tag the model writes first. Reads lines from
 * stdin when it is not a TTY, so a chat can be scripted: `printf 'Hello\n' | wgpu-char chat ...`.
 *
 * The prompt always fits the context with --max-new-tokens: the meta prompt header is kept whole,
 * then the paper's last 8 entries of the chat, or as many of the newest as fit (said once when the
 * window first shrinks). A message too long even alone after the header is refused with one line,
 * and the user can type again.
 */
import { createInterface } from 'node:readline';
import type { Gpu } from '../gpu/device.ts';
import type { Tokenizer } from '../data/tokenizer.ts';
import type { LlamaModel } from '../model/llama.ts';
import { EOT, type Turn } from '../data/prompted.ts';
import { UserError } from '../errors.ts';
import { ChatTooLongError, fitChatPrompt, HISTORY_TURNS, parseCompletion, ReplyText, type ChatSetting } from './chat-prompt.ts';
import { defaultStatus, fullNameOf } from './characters.ts';
import { promptRoom } from './context.ts';
import { noteOnStderr, type Note } from '../notes.ts';
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

/** What a chat needs of a Generator (tests give a stand-in). */
export type ChatGenerator = Pick<Generator, 'tokenizer' | 'contextLength' | 'generate'>;

/** The sampling settings of a chat's replies. */
export type ChatReplyOptions = Pick<ChatOptions, 'userName' | 'temperature' | 'topP' | 'repetitionPenalty' | 'maxNewTokens' | 'seed'>;

/** One chat: its history, and each reply's prompt fitted to the context. */
export class ChatSession {
  readonly history: Turn[] = [];
  private replies = 0;
  private windowNoted = false;
  private readonly room: number;

  /** Throws a one-line UserError when --max-new-tokens leaves no room for the header and a message. */
  constructor(readonly generator: ChatGenerator, readonly setting: ChatSetting, readonly opts: ChatReplyOptions, private readonly note: Note = noteOnStderr) {
    this.room = promptRoom(generator.contextLength, opts.maxNewTokens);
    const least = this.count(fitChatPrompt(setting, [this.userTurn('')], () => 0, Infinity).prompt);
    if (least > this.room) {
      throw new UserError(`the character's prompt header and an empty message make ${least} tokens, and ${this.room} fit ` +
        `(${this.contextDescription()}): give a --max-new-tokens under ${generator.contextLength - least}`);
    }
  }

  private count(prompt: string): number {
    return this.generator.tokenizer.encode(prompt, { bos: true }).length;
  }

  private contextDescription(): string {
    return `the ${this.generator.contextLength}-token context less --max-new-tokens ${this.opts.maxNewTokens}`;
  }

  private userTurn(content: string): Turn {
    return { role: this.opts.userName, action: '(speaking)', content };
  }

  /**
   * The character's reply to `question`, streamed on `onText` after `onStart` (called once the
   * prompt fits). A question that cannot fit is a one-line UserError; the history is then unchanged.
   */
  async reply(question: string, callbacks: { onStart?: () => void; onText?: (text: string) => void } = {}): Promise<Turn> {
    const asked = [...this.history, this.userTurn(question)];
    let fitted;
    try {
      fitted = fitChatPrompt(this.setting, asked, (p) => this.count(p), this.room);
    } catch (e) {
      if (!(e instanceof ChatTooLongError)) throw e;
      throw new UserError(`your message is too long: it makes a ${e.tokens}-token prompt with the character's prompt header, ` +
        `and ${e.room} fit (${this.contextDescription()}); not sent`);
    }
    if (fitted.turns < Math.min(asked.length, HISTORY_TURNS) && !this.windowNoted) {
      this.windowNoted = true;
      this.note(`the chat no longer fits the ${this.generator.contextLength}-token context with --max-new-tokens ${this.opts.maxNewTokens}: ` +
        `the prompt keeps the character's header and only the last ${fitted.turns} ${fitted.turns === 1 ? 'entry' : 'entries'} of the chat`);
    }
    callbacks.onStart?.();
    const head = new ReplyText();
    const r = await this.generator.generate(fitted.prompt, {
      maxNewTokens: this.opts.maxNewTokens,
      temperature: this.opts.temperature,
      topP: this.opts.topP,
      repetitionPenalty: this.opts.repetitionPenalty,
      seed: this.opts.seed + this.replies++,
      stop: [EOT],
      stopOnSpeakerTag: true,
      onText: (t) => callbacks.onText?.(head.push(t)),
    });
    callbacks.onText?.(head.flush());
    const turn = parseCompletion(this.setting.shortName, r.text);
    this.history.push(asked[asked.length - 1], turn);
    return turn;
  }
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
  const chat = new ChatSession(gen, setting, opts); // before anything is printed
  const interactive = process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, terminal: interactive });
  if (interactive) {
    console.error(`Chatting with ${setting.fullName} (${setting.location}). Empty line or Ctrl-D to quit.`);
    process.stdout.write(`${opts.userName}: `);
  }
  for await (const line of rl) {
    const question = line.trim();
    if (question === '') {
      if (interactive) break;
      continue;
    }
    if (!interactive) console.log(`${opts.userName}: ${question}`);
    try {
      await chat.reply(question, {
        onStart: () => process.stdout.write(`${setting.shortName}: `),
        onText: (t) => process.stdout.write(t),
      });
      process.stdout.write('\n');
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      console.error(`wgpu-char: ${e.message}`);
    }
    if (interactive) process.stdout.write(`${opts.userName}: `);
  }
  rl.close();
  gen.destroy();
}
