/**
 * The SFT sample format shared by data conversion, training and chat: the original's meta prompt
 * (`agent_meta_prompt_sft.txt`) and its converter's turn serialisation (`convert_prompt_data.py`).
 * Trained models depend on these strings byte for byte: do not reword META_PROMPT_SFT.
 */
import { fillTemplate } from './template.ts';

/** One line of the prompted training file: `{prompt, output, source}`, as the original converter writes it. */
export type PromptedSample = { prompt: string; output: string; source?: string };

/** One turn of an experience as parsed from a generated dialogue. */
export type Turn = { role: string; action: string; content: string };

/**
 * The original `agent_meta_prompt_sft.txt` after `strip()`, verbatim (note the space after
 * "knowledge of {character}." before the blank line).
 */
export const META_PROMPT_SFT =
  'I want you to act like {character}. I want you to respond and answer like {character}, using the tone, manner and vocabulary {character} would use. You must know all of the knowledge of {character}. \n\nThe status of you is as follows:\nLocation: {loc_time}\nStatus: {status}\n\nThe interactions are as follows:';

/** Marks the end of every turn in the output. Plain text the model learns to emit, not a special token. */
export const EOT = '<|eot|>';

/** `loc_time` and `status` of protective (out-of-world) scenes, as the original converter writes them. */
export const PROTECTIVE_LOC_TIME = 'A room';
export function protectiveStatus(shortName: string): string {
  return `${shortName} is chatting with a person.`;
}

/** The filled meta prompt, INCLUDING the trailing "\n\n" the original appends (so the prompt tokenises as a prefix of prompt+output). */
export function fillMetaPrompt(fields: { character: string; loc_time: string; status: string }): string {
  return fillTemplate(META_PROMPT_SFT, { character: fields.character, loc_time: fields.loc_time, status: fields.status }, 'META_PROMPT_SFT') + '\n\n';
}

/**
 * Turns -> `Name (action): text<|eot|>` lines joined by "\n", the last one without a newline after it.
 * Consecutive turns with the same (role, action) merge into one, their contents joined by "\n".
 * Protective scenes use `(speaking)` for every turn (so same-speaker runs always merge); normal
 * scenes use the turn's action, or `(speaking)` when it is empty.
 */
export function serializeTurns(turns: readonly Turn[], opts: { protective: boolean }): string {
  let text = '';
  let previousKey: string | undefined;
  for (const turn of turns) {
    const action = opts.protective ? '(speaking)' : turn.action || '(speaking)';
    const key = `${turn.role}\u0000${action}`;
    if (text !== '' && key === previousKey) {
      text += '\n' + turn.content;
      continue;
    }
    if (text !== '') text += `${EOT}\n`;
    text += `${turn.role} ${action}: ${turn.content}`;
    previousKey = key;
  }
  return text + EOT;
}
