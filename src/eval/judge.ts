/**
 * The LLM judge of the paper's evaluation: which results file holds whose interviews, the
 * interactions a judge sees (built from single- or multi-turn results with the original's rules),
 * the five dimensions' prompts, and the score parse rule.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import { fillTemplate, placeholdersOf } from '../data/template.ts';
import { pyStrip } from '../data/pipeline/text.ts';
import { readProfile } from '../data/pipeline/profile.ts';
import type { Turn } from '../data/prompted.ts';
import { INTERVIEW_LOCATION, interviewStatus, INTERVIEWER_ROLE } from './interview.ts';

export const DIMENSIONS = ['memory', 'values', 'personality', 'hallucination', 'stability'] as const;
export type Dimension = (typeof DIMENSIONS)[number];
/** Stability (long-term acting) needs a conversation: the original scores it on multi-turn interviews only. */
export const SINGLE_TURN_DIMENSIONS: readonly Dimension[] = ['memory', 'values', 'personality', 'hallucination'];

/** The judge prompt files, under the original's names so `--prompts` can point at its folder. */
export function judgePromptFile(dimension: Dimension): string {
  return `prompt_score_llm_${dimension}.txt`;
}
export const JUDGE_PLACEHOLDERS = ['agent_name', 'agent_context', 'loc_time', 'status', 'interactions'] as const;
/** The original's judge prompts, shipped verbatim (see NOTICE): the scores are only comparable with the paper's under the same wording. */
export const DEFAULT_JUDGE_PROMPTS_DIR = fileURLToPath(new URL('./prompts/', import.meta.url));

/** The paper's judge request: temperature 0, top_p 0.95, 512 tokens, this system message. */
export const JUDGE_SETTINGS = { temperature: 0, topP: 0.95, maxTokens: 512, systemPrompt: 'You are a helpful and accurate assistant.' } as const;

export function loadJudgePrompts(dimensions: readonly Dimension[], dir: string = DEFAULT_JUDGE_PROMPTS_DIR): Map<Dimension, string> {
  const prompts = new Map<Dimension, string>();
  for (const d of dimensions) {
    const path = join(dir, judgePromptFile(d));
    if (!existsSync(path)) throw new UserError(`${path}: judge prompt not found (--prompts must hold prompt_score_llm_<dimension>.txt for ${dimensions.join(', ')})`);
    const text = pyStrip(readFileSync(path, 'utf8').replace(/\r\n?/g, '\n'));
    const unknown = placeholdersOf(text).filter((p) => !(JUDGE_PLACEHOLDERS as readonly string[]).includes(p));
    if (unknown.length > 0) throw new UserError(`${path}: unknown placeholder(s) ${unknown.map((p) => `{${p}}`).join(', ')}; allowed: ${JUDGE_PLACEHOLDERS.join(', ')}`);
    if (!placeholdersOf(text).includes('interactions')) throw new UserError(`${path}: template never uses {interactions}, so the judge would not see the replies`);
    prompts.set(d, text);
  }
  return prompts;
}

/**
 * The score parse rule: the score is the LAST line of the judge's reply that is, once trimmed, a
 * single integer from 1 to 7 (the prompts ask to print the score on its own line and to repeat it
 * on the last line). A reply with no such line is unparsed: counted, never guessed. (The original
 * took the last whitespace-then-digit anywhere, so "step 3" or "out of 7" could become the score.)
 */
export function parseScore(reply: string): number | undefined {
  const lines = reply.replace(/\r\n?/g, '\n').split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^([1-7])$/.exec(lines[i]!.trim());
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** A results file: whose interviews, by which model, under which protocol. */
export type ResultsFile = { path: string; protocol: 'single' | 'turns'; character: string; model: string };

/** The original spelled Hermione "Hermonie" in its single-turn result folders and replies. */
const SPELLING_FIXES: Record<string, string> = { Hermonie: 'Hermione' };

const RESULT_DIR_RE = /^(multiturn_)?([^_]+)_(.+)_result$/;

/**
 * A results path: a `.json` (single-turn) or `.jsonl` (multi-turn) file inside a
 * `<Short>_<model>_result` or `multiturn_<Short>_<model>_result` folder, or a folder holding such
 * files or such folders (the released `gen_results/interview_single` works as is).
 */
export function findResultsFiles(path: string): ResultsFile[] {
  if (!existsSync(path)) throw new UserError(`${path}: no such results file or folder`);
  if (statSync(path).isFile()) return [describeResultsFile(path)];
  const found: ResultsFile[] = [];
  const walk = (dir: string, depth: number) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (depth < 2) walk(p, depth + 1);
      } else if (RESULT_DIR_RE.test(basename(dir)) && /\.jsonl?$/.test(name)) {
        found.push(describeResultsFile(p));
      }
    }
  };
  walk(path, 0);
  if (found.length === 0) throw new UserError(`${path}: no results files (*.json or *.jsonl inside <Short>_<model>_result or multiturn_<Short>_<model>_result folders)`);
  return found;
}

export function describeResultsFile(path: string): ResultsFile {
  const m = RESULT_DIR_RE.exec(basename(dirname(path)));
  if (!m) throw new UserError(`${path}: its folder must be named <Short>_<model>_result (single-turn) or multiturn_<Short>_<model>_result (multi-turn), to tell whose interviews these are`);
  const protocol = path.endsWith('.jsonl') ? 'turns' : path.endsWith('.json') ? 'single' : undefined;
  if (protocol === undefined) throw new UserError(`${path}: results must be .json (single-turn) or .jsonl (multi-turn)`);
  if ((protocol === 'turns') !== (m[1] !== undefined)) throw new UserError(`${path}: a ${protocol === 'turns' ? '.jsonl (multi-turn) file' : '.json (single-turn) file'} in a folder named ${basename(dirname(path))}`);
  return { path, protocol, character: SPELLING_FIXES[m[2]!] ?? m[2]!, model: m[3]! };
}

/** One interview to judge: a question (single-turn) or a whole conversation (multi-turn). */
export type JudgeItem = { index: number; question: string; interactions: string };

/**
 * The single-turn reply the judge sees, as the original builds it: the reply dict's content, or the
 * first list element whose action is exactly `(speaking)`, or "" when none is; cut at its first
 * blank line; every `*...*` (emphasis or stage direction, within a line) removed. Unlike the
 * original, the `<|NONSTOP|>` marker it appended to replies cut at the token limit is removed
 * first: it is not the character's words.
 */
export function singleReplyText(reply: Turn | Turn[] | undefined): string {
  let text: string;
  if (Array.isArray(reply)) text = reply.find((t) => t.action === '(speaking)')?.content ?? '';
  else text = reply?.content ?? '';
  text = text.replaceAll('<|NONSTOP|>', '');
  return text.split('\n\n')[0]!.replace(/\*.*?\*/g, '');
}

type TurnsLine = { qid?: number; topic?: string; content?: { turn_role?: string; turn_content?: Turn[] }[] };

/**
 * A multi-turn interview as the original shows it to the judge: per logged turn, its first element
 * if its action is exactly `(speaking)`, as `Role: content`; thinking turns (and ChatGPT's
 * malformed `((speaking)` turns) are left out, and so are elements after the first.
 */
export function turnsInteractions(content: TurnsLine['content']): string {
  const lines: string[] = [];
  for (const entry of content ?? []) {
    const t = entry.turn_content?.[0];
    if (t && t.action === '(speaking)') lines.push(`${t.role}: ${t.content.replaceAll('<|NONSTOP|>', '')}`);
  }
  return lines.join('\n');
}

export function readJudgeItems(file: ResultsFile): JudgeItem[] {
  const text = readFileSync(file.path, 'utf8');
  if (file.protocol === 'single') {
    let records: unknown;
    try {
      records = JSON.parse(text);
    } catch (e) {
      throw new UserError(`${file.path}: not JSON (${(e as Error).message.split('\n')[0]})`);
    }
    if (!Array.isArray(records)) throw new UserError(`${file.path}: a single-turn results file must be a JSON array of {topic_id, question, reply}`);
    return records.map((r, index) => {
      const rec = r as { question?: unknown; reply?: Turn | Turn[] };
      if (typeof rec?.question !== 'string') throw new UserError(`${file.path}: record ${index} has no "question" string`);
      return { index, question: rec.question, interactions: `${INTERVIEWER_ROLE}: ${rec.question}\n${file.character}: ${singleReplyText(rec.reply)}` };
    });
  }
  const items: JudgeItem[] = [];
  text.split('\n').forEach((line, lineNo) => {
    if (line.trim() === '') return;
    let rec: TurnsLine;
    try {
      rec = JSON.parse(line) as TurnsLine;
    } catch {
      throw new UserError(`${file.path}:${lineNo + 1}: not a JSON line`);
    }
    if (!Array.isArray(rec.content)) throw new UserError(`${file.path}:${lineNo + 1}: no "content" list of turns`);
    items.push({ index: typeof rec.qid === 'number' ? rec.qid : lineNo, question: rec.topic ?? '', interactions: turnsInteractions(rec.content) });
  });
  return items;
}

/** Paragraph 0 (the Wikipedia lead) of the nine characters' profiles, shipped (see NOTICE). */
const PROFILES_JSON = fileURLToPath(new URL('./profiles.json', import.meta.url));

/** The profile paragraph the judge sees: from `profilesDir`/wiki_<Short>.txt when given, else the shipped leads. */
export function profileLead(shortName: string, profilesDir?: string): string {
  if (profilesDir !== undefined) {
    const path = join(profilesDir, `wiki_${shortName}.txt`);
    if (existsSync(path)) return readProfile(path, shortName).paragraphs[0]!;
  }
  const shipped = JSON.parse(readFileSync(PROFILES_JSON, 'utf8')) as Record<string, { paragraph0: string }>;
  const lead = shipped[shortName]?.paragraph0;
  if (lead === undefined) throw new UserError(`no profile for ${shortName}: pass --profiles DIR holding wiki_${shortName}.txt${profilesDir !== undefined ? ` (not in ${profilesDir})` : ''}`);
  return lead;
}

export function judgePrompt(template: string, shortName: string, profile: string, interactions: string): string {
  return fillTemplate(template, { agent_name: shortName, agent_context: profile, loc_time: INTERVIEW_LOCATION, status: interviewStatus(shortName), interactions }, 'judge prompt');
}
