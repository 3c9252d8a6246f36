/**
 * Prompts for chatting with a trained character, as the paper's `LocalCharacter` builds them: the
 * filled SFT meta prompt + "\n\n", then the last 8 history turns (the character's own turns of any
 * action, the others' `(speaking)` turns) as `Role (action): content<|eot|>\n`, then `<Short> (` so
 * the model completes the action word (`speaking): ...` or `thinking): ...`). One builder for
 * `wgpu-char chat` (a setting and a history) and `wgpu-char serve` (an API client's chat, below),
 * and the parser of the reply the model writes after it.
 */
import { EOT, fillMetaPrompt, type Turn } from '../data/prompted.ts';
import { DEFAULT_LOCATION, defaultStatus, fullNameOf, KNOWN_CHARACTERS } from './characters.ts';

export const HISTORY_TURNS = 8;

/** The speaker name of the other party's turns when none is given: the paper's interviewer. */
export const DEFAULT_USER_NAME = 'Man';

export interface ChatSetting {
  shortName: string;
  fullName: string;
  location: string;
  status: string;
}

/**
 * A character by short name, with optional parts of its setting (the chat API's `character` field
 * and `serve --character`); `chatSettingOf` fills in the rest.
 */
export interface CharacterSpec {
  /** Short name, as in the turns (`Beethoven (speaking): ...`). */
  name: string;
  full_name?: string;
  location?: string;
  status?: string;
}

/** The setting of a character: its known full name (else `name`), the paper's coffee shop in the afternoon, a casual chat. */
export function chatSettingOf(c: CharacterSpec): ChatSetting {
  return { shortName: c.name, fullName: c.full_name ?? fullNameOf(c.name), location: c.location ?? DEFAULT_LOCATION, status: c.status ?? defaultStatus(c.name) };
}

/** Why a client's chat makes no character prompt (the server answers it as a bad request). */
export class ChatPromptError extends Error {}

export function buildChatPrompt(setting: ChatSetting, history: readonly Turn[]): string {
  return chatPromptFromHeader(chatHeader(setting), setting.shortName, history);
}

/** The filled meta prompt + "\n\n" of a setting: the prompt's header. */
export function chatHeader(setting: ChatSetting): string {
  return fillMetaPrompt({ character: setting.fullName, loc_time: setting.location, status: setting.status });
}

/**
 * Why a chat makes no prompt within its room: even with only the newest turn after the header (or
 * the header alone, for an empty history), the prompt is `tokens` long and `room` fit.
 */
export class ChatTooLongError extends ChatPromptError {
  constructor(readonly tokens: number, readonly room: number, readonly turns: number) {
    super(turns > 0
      ? `the newest message makes a ${tokens}-token prompt with the character's prompt header, and ${room} fit`
      : `the character's prompt header is ${tokens} tokens, and ${room} fit`);
  }
}

/** A prompt fitted to its room: its token count and how many of the history's last entries it keeps. */
export interface FittedChatPrompt {
  prompt: string;
  tokens: number;
  turns: number;
}

/**
 * buildChatPrompt within `room` tokens (`countTokens` counts a prompt as the generator will: BOS
 * included): the header always, then the paper's last HISTORY_TURNS entries, or as many of the
 * newest as fit when they do not all (the oldest dropped first). A newest entry that cannot fit
 * with the header alone is a ChatTooLongError: the header is never cut (without it the model loses
 * its character), and neither is a message.
 */
export function fitChatPrompt(setting: ChatSetting, history: readonly Turn[], countTokens: (prompt: string) => number, room: number): FittedChatPrompt {
  return fitChatPromptFromHeader(chatHeader(setting), setting.shortName, history, countTokens, room);
}

/** fitChatPrompt after any header (e.g. a chat API's system message). */
export function fitChatPromptFromHeader(header: string, shortName: string, history: readonly Turn[],
  countTokens: (prompt: string) => number, room: number): FittedChatPrompt {
  const window = history.slice(-HISTORY_TURNS);
  const fitted = (turns: number): FittedChatPrompt => {
    const prompt = chatPromptFromHeader(header, shortName, window.slice(window.length - turns));
    return { prompt, tokens: countTokens(prompt), turns };
  };
  const all = fitted(window.length);
  if (all.tokens <= room) return all;
  // The fewest: the newest entry alone (none for an empty history). Then the most that fit, by
  // bisection (the prompt grows with each entry kept): at most 3 more counts for 8 entries.
  let best = fitted(Math.min(1, window.length));
  if (best.tokens > room) throw new ChatTooLongError(best.tokens, room, best.turns);
  let tooMany = window.length;
  while (tooMany - best.turns > 1) {
    const mid = fitted((best.turns + tooMany) >> 1);
    if (mid.tokens <= room) best = mid;
    else tooMany = mid.turns;
  }
  return best;
}

/** The same after any prompt header (e.g. a chat API's system message): kept history turns, then `<Short> (`. */
export function chatPromptFromHeader(header: string, shortName: string, history: readonly Turn[]): string {
  let prompt = header;
  for (const t of history.slice(-HISTORY_TURNS)) {
    if (t.role === shortName || t.action === '(speaking)') prompt += `${t.role} ${t.action}: ${t.content}${EOT}\n`;
  }
  return prompt + `${shortName} (`;
}

/** A chat as an API client sends it: an optional system message (the prompt's header), then the turns. */
export interface ClientChat {
  system?: string;
  turns: readonly { role: 'user' | 'assistant'; name?: string; content: string }[];
}

/**
 * The character prompt of a client's chat, and the character's short name.
 * - Header: the system message as is, its trailing whitespace made exactly "\n\n" (the original
 *   appends "\n\n" to the stripped meta prompt, and `fillMetaPrompt` ends in "\n\n": both give the
 *   same prompt). Without one, the meta prompt filled from the setting of `character`, else of
 *   `defaultCharacter`; neither: ChatPromptError.
 * - Short name: `character.name`, else the name in the system message's "I want you to act like
 *   <X>." (`characterFromMetaPrompt`), else `defaultCharacter.name`; none: ChatPromptError.
 * - A user turn is `<name or userName or "Man"> (speaking): ...`, an assistant turn
 *   `<Short> (speaking): ...`; the last HISTORY_TURNS are kept, not merged.
 */
export function chatPromptFromClientChat(
  chat: ClientChat,
  opts: { character?: CharacterSpec; defaultCharacter?: CharacterSpec; userName?: string },
): { prompt: string; shortName: string } {
  const userName = opts.userName || DEFAULT_USER_NAME;
  const history = (shortName: string): Turn[] =>
    chat.turns.map((t) => ({ role: t.role === 'user' ? t.name?.trim() || userName : shortName, action: '(speaking)', content: t.content }));
  if (chat.system !== undefined) {
    const shortName = opts.character?.name ?? characterFromMetaPrompt(chat.system) ?? opts.defaultCharacter?.name;
    if (!shortName) {
      throw new ChatPromptError(
        `cannot tell the character's name from the system message (no "I want you to act like <name>."): give the 'character' field {name} or start the server with --character`,
      );
    }
    const trimmed = chat.system.replace(/\s+$/, '');
    const header = trimmed === '' ? '' : trimmed + '\n\n';
    return { prompt: chatPromptFromHeader(header, shortName, history(shortName)), shortName };
  }
  const character = opts.character ?? opts.defaultCharacter;
  if (!character) {
    throw new ChatPromptError(
      `a chat needs the character's prompt header: a system message with the meta prompt ("I want you to act like ..."), or the 'character' field {name, full_name, location, status}`,
    );
  }
  return { prompt: buildChatPrompt(chatSettingOf(character), history(character.name)), shortName: character.name };
}

/** The short name behind "I want you to act like <full name>." in a meta prompt, if any (a name not known is its own short name). */
export function characterFromMetaPrompt(header: string): string | undefined {
  const m = /I want you to act like (.+?)\. I want you to/.exec(header) ?? /I want you to act like ([^\n.]+)\./.exec(header);
  if (!m) return undefined;
  const full = m[1].trim();
  return Object.entries(KNOWN_CHARACTERS).find(([, f]) => f === full)?.[0] ?? full;
}

/** The action head the model writes after `<Short> (`: `speaking): `, `thinking): `. */
const ACTION_HEAD_RE = /^[^()\n:]{0,30}\)\s*:\s?/;

/**
 * Splits the model's completion (which continues after `<Short> (`) into the action and the reply:
 * `speaking): I was born in Bonn.` -> {action: '(speaking)', content: 'I was born in Bonn.'}.
 * Unlike the original's post_process, a `": "` inside the reply is kept as is.
 */
export function parseCompletion(shortName: string, completion: string): Turn {
  const m = /^([^()\n:]{0,30})\)\s*:\s?/.exec(completion); // ACTION_HEAD_RE, capturing the action
  if (m) return { role: shortName, action: `(${m[1].trim() || 'speaking'})`, content: completion.slice(m[0].length).trim() };
  return { role: shortName, action: '(speaking)', content: completion.trim() };
}

/**
 * Turns the completion after `<Short> (` into the reply, streaming: drops the `speaking): ` head
 * (any action) and leading whitespace, and holds trailing whitespace back until more text follows,
 * so the concatenated output is `content.trim()` with the head removed. A completion that does not
 * start with a head (none within 40 characters or before a new line) is shown whole, trimmed.
 */
export class ReplyText {
  private head = '';
  private inBody = false;
  private started = false;
  private pendingWs = '';

  push(s: string): string {
    if (!this.inBody) {
      this.head += s;
      const m = ACTION_HEAD_RE.exec(this.head);
      if (m) s = this.head.slice(m[0].length);
      else if (this.head.length > 40 || this.head.includes('\n')) s = this.head;
      else return '';
      this.inBody = true;
    }
    return this.body(s);
  }

  private body(s: string): string {
    if (!this.started) {
      s = s.replace(/^\s+/, '');
      if (s === '') return '';
      this.started = true;
    }
    const all = this.pendingWs + s;
    const m = /\s+$/.exec(all);
    this.pendingWs = m ? m[0] : '';
    return m ? all.slice(0, m.index) : all;
  }

  /** At the end: a completion too short to tell has no head (as `parseCompletion` would find). */
  flush(): string {
    if (this.inBody) return '';
    this.inBody = true;
    const m = ACTION_HEAD_RE.exec(this.head);
    return this.body(m ? this.head.slice(m[0].length) : this.head);
  }
}
