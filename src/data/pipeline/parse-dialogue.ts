import type { Turn } from '../prompted.ts';
import type { Reject } from './parse-scenes.ts';
import { normalizeNewlines, pyStrip } from './text.ts';

/**
 * Dialogue parser: a model reply to the dialogue (or protective) template -> an experience:
 * the background paragraph(s) and the turns {role, action, content}.
 *
 * Block format the templates ask for:
 *
 *     Background:
 *     One paragraph of setting.
 *
 *     Beethoven (thinking)
 *     First paragraph of the thought.
 *     Second paragraph, chained with a single newline.
 *
 *     Neefe (speaking)
 *     ...
 *
 * Fixes over the original `parse_dialogue_info` (also listed in docs/data-pipeline.md, "How our
 * output differs from the original"):
 * - a speaker line followed by any number of content lines is ONE turn whose paragraphs are joined
 *   by "\n" (the original read 3-line blocks as role/action/content, writing "Name P1: P2" into the
 *   training text, and silently dropped blocks of 4+ lines);
 * - `Role: text` keeps everything after the FIRST colon (the original kept only the text up to the
 *   next colon);
 * - headings such as `Title: ...`, `Scene 2`, `Setting: ...` are rejected, not turned into speakers;
 * - ALL-CAPS names are title-cased, and the character's full name becomes its short name, so the
 *   character always speaks under the name the chat prompt uses;
 * - turns run together without a blank line are split at the next `Name (action)` line (or
 *   `Name: text` line of a speaker already seen);
 * - every block that is not used (preamble, epilogue, narration, headings, empty turns) is returned
 *   in `rejects` with the reason instead of vanishing;
 * - a turn is dropped if its content is empty AFTER stage directions are removed (the original
 *   checked before, and could emit empty turns);
 * - `<|eot|>` and `<|NONSTOP|>` in model text are removed so they cannot corrupt the SFT format;
 * - a literal backslash-n (which the original prompt's `"\n"` invites) is read as a line break.
 * - only a pair of quotes wrapping the whole utterance is removed (the original stripped every `"`
 *   at either end, eating the closing quote of a title at the end of a sentence).
 * Kept from the original: stage directions `( ... )` inside content are removed, actions are kept
 * (lower-cased, whitespace tidied), setting blocks are the ones labelled `Background:`.
 */

export type DialogueParseOptions = {
  /** The character's short name ("Beethoven"); the full name is mapped to it. */
  shortName: string;
  fullName: string;
  /** The reply was cut at the token limit (finish_reason "length"): its last turn is incomplete and is dropped. */
  truncated?: boolean;
};

export type DialogueParseResult = {
  /** Background paragraphs, in order (the first one becomes the SFT `Status`). */
  setting: string[];
  turns: Turn[];
  rejects: Reject[];
};

/** Words that start headings, never speakers (`Title: The Last Concerto`, `Scene 2`, `THE END`). */
const HEADING_WORDS = new Set([
  'title', 'scene', 'setting', 'settings', 'characters', 'location', 'type', 'status', 'note', 'notes',
  'act', 'epilogue', 'prologue', 'summary', 'example', 'format', 'the end', 'end', 'fade out', 'fade in', 'cut to', 'context',
]);
/** Lower-case words allowed inside a proper name ("Ludwig van Beethoven", "Joan of Arc"). */
const NAME_CONNECTORS = new Set(['van', 'von', 'de', 'der', 'den', 'da', 'di', 'du', 'del', 'la', 'le', 'of', 'the', 'bin', 'ibn', 'al', 'y']);

const NAME_CHARS_RE = /^[\p{L}\p{M}\p{N}'’.\- ]+$/u;
/** `Name (action)` optionally followed by `:` and text on the same line. */
const ACTION_HEADER_RE = /^(.+?)\s*\(([^()\n]{1,40})\)\s*:?\s*(.*)$/;
/** `Name: text` (text may be empty when the utterance starts on the next line). */
const COLON_HEADER_RE = /^([^:]{1,40}):\s*(.*)$/;
const BACKGROUND_RE = /^background\s*:\s*(.*)$/i;

function stripMarkdown(line: string): string {
  return pyStrip(line.replace(/\*\*|__|^#+\s*|^[-•]\s+/g, ''));
}

function isHeadingName(name: string): boolean {
  const lower = name.toLowerCase();
  if (HEADING_WORDS.has(lower)) return true;
  const first = lower.split(' ')[0]!;
  return HEADING_WORDS.has(first) && /^(scene|act|title|setting|note)\b/.test(lower);
}

function isAllCaps(name: string): boolean {
  return /\p{L}/u.test(name) && name === name.toUpperCase() && name !== name.toLowerCase();
}

/**
 * Does `name` look like a speaker name? `strict` (for `Name: text`, where sentences with a colon
 * are common) wants every word capitalised; the `Name (action)` form tolerates one lower-case word
 * ("Old man") because the action in parentheses is already a strong signal.
 */
function looksLikeName(name: string, strict: boolean): boolean {
  if (name.length === 0 || name.length > 40 || !NAME_CHARS_RE.test(name) || isHeadingName(name)) return false;
  const words = name.split(/\s+/);
  if (words.length > 5 || words.some((w) => !/\p{L}|\p{N}/u.test(w))) return false;
  if (!/^\p{Lu}/u.test(words[0]!)) return false;
  if (isAllCaps(name)) return true;
  const lowerWords = words.filter((w) => !/^\p{Lu}/u.test(w) && !/^\p{N}/u.test(w) && !NAME_CONNECTORS.has(w));
  return strict ? lowerWords.length === 0 && words.length <= 4 : lowerWords.length <= 1;
}

type SpeakerLine = { role: string; action: string; rest: string; strong: boolean };

/** Reads a speaker line: `Name (action)`, `Name (action): text`, `Name: text`, or an ALL-CAPS name alone. */
function readSpeakerLine(rawLine: string): SpeakerLine | undefined {
  const line = stripMarkdown(rawLine);
  const withAction = ACTION_HEADER_RE.exec(line);
  if (withAction) {
    const name = pyStrip(withAction[1]!.replace(/:$/, ''));
    if (looksLikeName(name, false)) return { role: name, action: `(${withAction[2]!})`, rest: withAction[3]!, strong: true };
  }
  const withColon = COLON_HEADER_RE.exec(line);
  if (withColon) {
    const name = pyStrip(withColon[1]!);
    if (looksLikeName(name, true)) return { role: name, action: '', rest: withColon[2]!, strong: false };
    return undefined;
  }
  // Screenplay style: "BEETHOVEN" alone on its line, the utterance below.
  if (isAllCaps(line) && looksLikeName(line, true) && line.replace(/[^\p{L}]/gu, '').length >= 2) return { role: line, action: '', rest: '', strong: false };
  return undefined;
}

function isHeadingLine(rawLine: string): boolean {
  const line = stripMarkdown(rawLine);
  const colon = COLON_HEADER_RE.exec(line);
  if (colon && isHeadingName(pyStrip(colon[1]!))) return true;
  return isHeadingName(pyStrip(line.replace(/[\s:.\d]+$/, ''))) || /^scene\s*\d+/i.test(line);
}

function normalizeAction(action: string): string {
  const inner = pyStrip(action.slice(1, -1)).replace(/\s+/g, ' ').toLowerCase();
  return `(${inner})`;
}

function titleCase(name: string): string {
  return name.toLowerCase().replace(/(^|[\s\-'’])(\p{L})/gu, (_, sep: string, letter: string) => sep + letter.toUpperCase());
}

function normalizeRole(role: string, opts: DialogueParseOptions): string {
  let name = pyStrip(role.replace(/\(.*?\)/g, '').replaceAll(':', ''));
  if (isAllCaps(name)) name = titleCase(name);
  const lower = name.toLowerCase();
  if (lower === opts.fullName.toLowerCase() || lower === opts.shortName.toLowerCase()) return opts.shortName;
  return name;
}

/**
 * Removes ONE pair of quotes wrapping the whole utterance (`"Hello."` -> `Hello.`). The original
 * stripped every `"` at either end, which also ate the closing quote of `... the "Pathetique."`.
 */
function unwrapQuotes(text: string): string {
  for (const [open, close] of [['"', '"'], ['“', '”']] as const) {
    if (text.length >= 2 && text.startsWith(open) && text.endsWith(close)) {
      const inner = text.slice(1, -1);
      if (!inner.includes(open) && !inner.includes(close)) return pyStrip(inner);
    }
  }
  return text;
}

/** Content cleanup: stage directions out, wrapping quotes off, paragraphs trimmed, empty paragraphs dropped. */
function cleanContent(lines: string[]): string {
  const paragraphs = lines
    .map((l) => pyStrip(l.replace(/[ \t]*\([^\n]*?\)/g, '')))
    .filter((l) => l !== '');
  return unwrapQuotes(pyStrip(paragraphs.join('\n')));
}

type Unit =
  | { kind: 'setting'; lines: string[]; source: string[] }
  | { kind: 'turn'; role: string; action: string; lines: string[]; source: string[] }
  | { kind: 'prose'; lines: string[]; source: string[] }
  | { kind: 'heading'; lines: string[]; source: string[] };

export function parseDialogue(completion: string, opts: DialogueParseOptions): DialogueParseResult {
  const text = normalizeNewlines(completion)
    .replaceAll('<|NONSTOP|>', '')
    .replaceAll('<|eot|>', '')
    .replaceAll('\\n', '\n');

  // Pass 1: lines -> units (setting / turn / prose / heading).
  const units: Unit[] = [];
  const knownSpeakers = new Set([opts.shortName.toLowerCase(), opts.fullName.toLowerCase()]);
  let current: Unit | undefined;
  for (const rawLine of text.split('\n')) {
    if (pyStrip(rawLine) === '') {
      current = undefined;
      continue;
    }
    const atBlockStart = current === undefined;
    const background = BACKGROUND_RE.exec(stripMarkdown(rawLine));
    if (background && (atBlockStart || current?.kind !== 'turn')) {
      current = { kind: 'setting', lines: [background[1]!], source: [rawLine] };
      units.push(current);
      continue;
    }
    const speaker = readSpeakerLine(rawLine);
    // Inside a block only a strong `Name (action)` line or a known speaker starts a new turn;
    // anything else there is more likely a sentence of the current utterance.
    if (speaker && (atBlockStart || speaker.strong || knownSpeakers.has(speaker.role.toLowerCase()))) {
      if (speaker.strong) knownSpeakers.add(speaker.role.toLowerCase());
      current = { kind: 'turn', role: speaker.role, action: speaker.action, lines: [speaker.rest], source: [rawLine] };
      units.push(current);
      continue;
    }
    if (atBlockStart) {
      current = isHeadingLine(rawLine) ? { kind: 'heading', lines: [rawLine], source: [rawLine] } : { kind: 'prose', lines: [rawLine], source: [rawLine] };
      units.push(current);
      continue;
    }
    current!.lines.push(rawLine);
    current!.source.push(rawLine);
  }

  // Pass 2: units -> setting, turns and rejects.
  const setting: string[] = [];
  const turns: Turn[] = [];
  const turnUnits: number[] = [];
  const rejects: Reject[] = [];
  let emptySettingLabel = false;
  const lastTurnUnit = units.map((u) => u.kind).lastIndexOf('turn');
  units.forEach((unit, index) => {
    const block = unit.source.join('\n');
    switch (unit.kind) {
      case 'setting': {
        const paragraph = pyStrip(unit.lines.map(pyStrip).filter((l) => l !== '').join('\n'));
        if (paragraph === '') emptySettingLabel = true;
        else setting.push(paragraph);
        return;
      }
      case 'prose': {
        // "Background:" on its own, then the paragraph after a blank line.
        if (emptySettingLabel && turns.length === 0) {
          setting.push(pyStrip(unit.lines.map(pyStrip).join('\n')));
          emptySettingLabel = false;
          return;
        }
        const reason = turns.length === 0 ? 'text before the first turn (preamble)' : index > lastTurnUnit ? 'text after the last turn (epilogue)' : 'text without a speaker line (narration)';
        rejects.push({ text: block, reason });
        return;
      }
      case 'heading':
        rejects.push({ text: block, reason: 'heading, not a turn' });
        return;
      case 'turn': {
        const content = cleanContent(unit.lines);
        const role = normalizeRole(unit.role, opts);
        if (role === '' || content === '') {
          rejects.push({ text: block, reason: role === '' ? 'empty speaker name' : 'empty utterance (after removing stage directions)' });
          return;
        }
        turns.push({ role, action: unit.action === '' ? '' : normalizeAction(unit.action), content });
        turnUnits.push(index);
        return;
      }
    }
  });

  if (opts.truncated && turns.length > 0) {
    const dropped = turns.pop()!;
    rejects.push({ text: units[turnUnits.pop()!]!.source.join('\n'), reason: `last turn cut off at the token limit (${dropped.role})` });
  }
  return { setting, turns, rejects };
}
