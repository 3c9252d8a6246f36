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
  let prompt = fillMetaPrompt({ character: setting.fullName, loc_time: setting.location, status: setting.status });
  for (const t of history.slice(-HISTORY_TURNS)) {
    if (t.role === setting.shortName || t.action === '(speaking)') prompt += `${t.role} ${t.action}: ${t.content}${EOT}\n`;
  }
  return prompt + `${setting.shortName} (`;
}

/**
 * Splits the model's completion (which continues after `<Short> (`) into the action and the reply:
 * `speaking): I was born in Bonn.` -> {action: '(speaking)', content: 'I was born in Bonn.'}.
 * Unlike the original's post_process, a `": "` inside the reply is kept as is (spec §9).
 */
export function parseCompletion(shortName: string, completion: string): Turn {
  const m = /^([^()\n:]{0,30})\)\s*:\s?/.exec(completion);
  if (m) return { role: shortName, action: `(${m[1].trim() || 'speaking'})`, content: completion.slice(m[0].length).trim() };
  return { role: shortName, action: '(speaking)', content: completion.trim() };
}
