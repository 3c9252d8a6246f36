/**
 * Prompts for chatting with a trained character, as the paper's `LocalCharacter` builds them
 * (spec §4.2): the filled SFT meta prompt + "\n\n", then the last 8 history turns (the character's
 * own turns of any action, the others' `(speaking)` turns) as `Role (action): content<|eot|>\n`,
 * then `<Short> (` so the model completes the action word (`speaking): ...` or `thinking): ...`).
 */
import { EOT, fillMetaPrompt, type Turn } from '../data/prompted.ts';

export const HISTORY_TURNS = 8;

export interface ChatSetting {
  shortName: string;
  fullName: string;
  location: string;
  status: string;
}

export function buildChatPrompt(setting: ChatSetting, history: readonly Turn[]): string {
  const header = fillMetaPrompt({ character: setting.fullName, loc_time: setting.location, status: setting.status });
  return chatPromptFromHeader(header, setting.shortName, history);
}

/** The same after any prompt header (e.g. a chat API's system message): kept history turns, then `<Short> (`. */
export function chatPromptFromHeader(header: string, shortName: string, history: readonly Turn[]): string {
  let prompt = header;
  for (const t of history.slice(-HISTORY_TURNS)) {
    if (t.role === shortName || t.action === '(speaking)') prompt += `${t.role} ${t.action}: ${t.content}${EOT}\n`;
  }
  return prompt + `${shortName} (`;
}

/** The action head the model writes after `<Short> (`: `speaking): `, `thinking): `. */
const ACTION_HEAD_RE = /^[^()\n:]{0,30}\)\s*:\s?/;

/**
 * Splits the model's completion (which continues after `<Short> (`) into the action and the reply:
 * `speaking): I was born in Bonn.` -> {action: '(speaking)', content: 'I was born in Bonn.'}.
 * Unlike the original's post_process, a `": "` inside the reply is kept as is (spec §9).
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
