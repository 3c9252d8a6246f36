/**
 * `wgpu-char interview single`: the paper's single-turn interview of a trained character. Every
 * question of the character's set is asked on its own (empty history), with the SFT meta prompt in
 * the interview setting, `Man (speaking): <question><|eot|>` and `<Short> (` for the model to
 * complete, through an OpenAI-compatible /completions endpoint (our `serve`, FastChat, vLLM).
 *
 * A reply whose action is not speaking (a `(thinking)` turn) is added to the history and the
 * question asked again, at most `maxThinking` times; the thinking turns are kept in the record's
 * `reply` before the answer (the scorer reads the first `(speaking)` element).
 *
 * Resumable: every request goes through the data pipeline's runner, so each reply is fsynced to
 * OUT/logs/<Short>_<label>.single.log.jsonl before it counts; a re-run sends only what is missing.
 * Re-asks are rounds: round k asks the questions still thinking after round k-1, and its prompts
 * are built from the logged replies, so a re-run rebuilds the same prompts and skips them too.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import { CompletionClient, type GenerationSettings, type RetryPolicy } from '../data/pipeline/client.ts';
import type { ProgressStream } from '../data/pipeline/progress.ts';
import { runStage, type StageSummary, type WorkItem } from '../data/pipeline/runner.ts';
import { EOT, type Turn } from '../data/prompted.ts';
import { buildChatPrompt, parseCompletion, type ChatSetting } from '../gen/chat-prompt.ts';
import { fullNameOf } from '../gen/characters.ts';
import { acquireLockUntilExit } from '../util/lock.ts';
import { fillTemplate, placeholdersOf } from '../data/template.ts';
import { pyStrip } from '../data/pipeline/text.ts';
import { writeFileAtomic } from '../util/atomic.ts';

/** The interviews' scene: the README demo's coffee shop with the longer status the interview scripts use. */
export const INTERVIEW_LOCATION = 'Coffee Shop - Afternoon';
export function interviewStatus(shortName: string): string {
  return `${shortName} is casually chatting with a man from the 21st century. ${shortName} fully trusts the man who engage in conversation and shares everything ${shortName} knows without reservation.`;
}
/** The asker's speaker name in every interview. */
export const INTERVIEWER_ROLE = 'Man';

/** The paper's sampling of a trained character in the interviews. */
export const INTERVIEW_SAMPLING = { temperature: 0.2, topP: 0.95, maxTokens: 256 } as const;

export function interviewSetting(shortName: string, fullName?: string): ChatSetting {
  return { shortName, fullName: fullNameOf(shortName, fullName), location: INTERVIEW_LOCATION, status: interviewStatus(shortName) };
}

/** One interview question, as in the question files. */
export type Question = { topic_id: string; topic: string; question: string };

/** The question sets shipped with wgpu-char (see NOTICE). */
export const QUESTIONS_DIR = fileURLToPath(new URL('./questions/', import.meta.url));

export function defaultQuestionsPath(shortName: string, protocol: 'single' | 'turns'): string {
  return join(QUESTIONS_DIR, protocol === 'single' ? `generated_agent_interview_${shortName}.json` : `generated_agent_interview_for_multiturn_${shortName}.json`);
}

/** Reads a question file: a JSON array of {topic_id, topic, question} with non-empty questions. */
export function loadQuestions(path: string): Question[] {
  if (!existsSync(path)) throw new UserError(`${path}: question file not found`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${path}: not JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (!Array.isArray(value) || value.length === 0) throw new UserError(`${path}: must be a non-empty JSON array of {topic_id, topic, question}`);
  return value.map((q, i) => {
    const r = q as Partial<Question>;
    if (typeof r !== 'object' || r === null || typeof r.question !== 'string' || r.question.trim() === '') {
      throw new UserError(`${path}: item ${i} has no "question" string`);
    }
    return { topic_id: typeof r.topic_id === 'string' ? r.topic_id : '', topic: typeof r.topic === 'string' ? r.topic : '', question: r.question };
  });
}

/** A record of the output file, in the original's schema plus `finish_reason` of the last request ("length": cut at the token limit). */
export type SingleRecord = { topic_id: string; question: string; reply: Turn[]; finish_reason: string };

/**
 * The character's turn from a completion that continues `<Short> (`. A server that ignored the
 * stop string may have run on into further turns: only the text before the first `<|eot|>` is the
 * reply. Unlike the original, a `": "` inside the reply stays as it is (the original turned it into
 * a paragraph break), and a reply without an action head is a speaking turn (the original raised
 * and retried the request).
 */
export function parseCharacterReply(shortName: string, completion: string): Turn {
  const cut = completion.indexOf(EOT);
  return parseCompletion(shortName, cut >= 0 ? completion.slice(0, cut) : completion);
}

/** Whether a turn answers the question: the original re-asks while the action lacks "speaking". */
export function isSpeaking(turn: Turn): boolean {
  return turn.action.includes('speaking');
}

export type InterviewSingleOptions = {
  shortName: string;
  fullName?: string;
  questions: Question[];
  /** The model name sent to the server. */
  model: string;
  /** The model part of the result folder's name, `<Short>_<label>_result`. */
  label: string;
  outDir: string;
  settings: Omit<GenerationSettings, 'model' | 'endpoint' | 'stop' | 'systemPrompt'>;
  retry: RetryPolicy;
  concurrency: number;
  maxThinking: number;
  progressStream?: ProgressStream;
  progressIntervalMs?: number;
};

export type InterviewSingleReport = {
  /** The result file, written once every question has its reply; undefined while some failed. */
  resultPath?: string;
  questions: number;
  /** Summaries of each round's requests (round 0, then the re-asks). */
  rounds: StageSummary[];
  /** Questions with no reply yet: a request failed after all its attempts (a re-run retries them). */
  failed: number;
  /** Questions whose every reply was a thinking turn, after `maxThinking` re-asks. */
  neverSpoke: number;
  /** Replies cut at the token limit. */
  truncated: number;
};

export function resultDirName(shortName: string, label: string, protocol: 'single' | 'turns'): string {
  return `${protocol === 'turns' ? 'multiturn_' : ''}${shortName}_${label}_result`;
}

/** Runs the interview (resuming from the log) and writes OUT/<Short>_<label>_result/interview.json. */
export async function runInterviewSingle(opts: InterviewSingleOptions): Promise<InterviewSingleReport> {
  const setting = interviewSetting(opts.shortName, opts.fullName);
  const logDir = join(opts.outDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const base = `${opts.shortName}_${opts.label}`;
  const release = acquireLockUntilExit(join(logDir, `${base}.single.lock`), {
    onTakeover: (pid) => opts.progressStream?.write(`wgpu-char: ${logDir}: taking over the lock of pid ${pid}, which is no longer running\n`),
  });
  try {
    const client = new CompletionClient({ ...opts.settings, model: opts.model, endpoint: 'completions', stop: [EOT], systemPrompt: '' }, opts.retry);
    const logPath = join(logDir, `${base}.single.log.jsonl`);
    // Per question: the character's turns so far (thinking turns, then the answer) and the last finish reason.
    const turns: Turn[][] = opts.questions.map(() => []);
    const finish: string[] = opts.questions.map(() => '');
    const failed = new Set<number>();
    const rounds: StageSummary[] = [];
    let asking = opts.questions.map((_, i) => i);
    for (let round = 0; round <= opts.maxThinking && asking.length > 0; round++) {
      const items: (WorkItem & { q: number })[] = asking.map((q) => ({
        id: `q${q}-r${round}`,
        q,
        prompt: buildChatPrompt(setting, [{ role: INTERVIEWER_ROLE, action: '(speaking)', content: opts.questions[q]!.question }, ...turns[q]!]),
      }));
      const { summary, results } = await runStage({
        stage: round === 0 ? 'interview' : `re-ask ${round}`,
        items,
        logPath,
        client,
        concurrency: opts.concurrency,
        progressStream: opts.progressStream,
        progressIntervalMs: opts.progressIntervalMs,
      });
      rounds.push(summary);
      const next: number[] = [];
      for (const item of items) {
        const ok = results.get(item.id);
        if (!ok) {
          failed.add(item.q);
          continue;
        }
        const turn = parseCharacterReply(opts.shortName, ok.completion);
        turns[item.q]!.push(turn);
        finish[item.q] = ok.finish_reason;
        if (!isSpeaking(turn)) next.push(item.q);
      }
      asking = next;
    }
    const report: InterviewSingleReport = {
      questions: opts.questions.length,
      rounds,
      failed: failed.size,
      neverSpoke: asking.length,
      truncated: finish.filter((f) => f === 'length').length,
    };
    if (failed.size === 0) {
      const records: SingleRecord[] = opts.questions.map((q, i) => ({ topic_id: q.topic_id, question: q.question, reply: turns[i]!, finish_reason: finish[i]! }));
      const dir = join(opts.outDir, resultDirName(opts.shortName, opts.label, 'single'));
      mkdirSync(dir, { recursive: true });
      report.resultPath = join(dir, 'interview.json');
      writeFileAtomic(report.resultPath, JSON.stringify(records, null, 2) + '\n');
    }
    return report;
  } finally {
    release();
  }
}

/** The interviewer prompt's file name (the original's, so `--prompts` can point at its folder) and its placeholders. */
export const INTERVIEWER_PROMPT_FILE = 'agent_meta_prompt_interviewer_chatgpt.txt';
export const INTERVIEWER_PLACEHOLDERS = ['character', 'topic', 'profile', 'loc_time', 'status'] as const;
/** Our interviewer prompt (our own words, the original's placeholders). */
export const DEFAULT_INTERVIEWER_DIR = fileURLToPath(new URL('./interviewer/', import.meta.url));

export function loadInterviewerPrompt(dir: string = DEFAULT_INTERVIEWER_DIR): string {
  const path = join(dir, INTERVIEWER_PROMPT_FILE);
  if (!existsSync(path)) throw new UserError(`${path}: interviewer prompt not found (--prompts must hold ${INTERVIEWER_PROMPT_FILE})`);
  const text = pyStrip(readFileSync(path, 'utf8').replace(/\r\n?/g, '\n'));
  const unknown = placeholdersOf(text).filter((p) => !(INTERVIEWER_PLACEHOLDERS as readonly string[]).includes(p));
  if (unknown.length > 0) throw new UserError(`${path}: unknown placeholder(s) ${unknown.map((p) => `{${p}}`).join(', ')}; allowed: ${INTERVIEWER_PLACEHOLDERS.join(', ')}`);
  if (!placeholdersOf(text).includes('topic')) throw new UserError(`${path}: template never uses {topic}, so the interviewer would not know the question`);
  return text;
}

/** The interviewer's prompt: the filled meta prompt + "\n\n", the WHOLE history (the original's filter), then `Man (speaking):`. */
export function interviewerPrompt(header: string, shortName: string, history: readonly Turn[]): string {
  let prompt = header;
  for (const t of history) if (t.role === shortName || t.action === '(speaking)') prompt += `${t.role} ${t.action}: ${t.content}\n\n`;
  return prompt + `${INTERVIEWER_ROLE} (speaking):`;
}

/** The interviewer's question: its reply up to the first blank line, stripped. */
export function parseInterviewerReply(reply: string): Turn {
  return { role: INTERVIEWER_ROLE, action: '(speaking)', content: pyStrip(reply.replace(/\r\n?/g, '\n').split('\n\n')[0]!) };
}

/** A line of the multi-turn output, in the original's schema (`character` is the full name, `model` the served name). */
export type TurnsRecord = {
  character: string;
  model: string;
  topic: string;
  qid: number;
  max_turns: number;
  finished: boolean;
  content: { turn_id: number; turn_role: 'interviewer' | 'character'; turn_content: Turn[] }[];
};

export type InterviewTurnsOptions = Omit<InterviewSingleOptions, 'maxThinking'> & {
  rounds: number;
  interviewer: Omit<GenerationSettings, 'endpoint' | 'stop'>;
  interviewerTemplate: string;
  profile: string;
};

/** `resultPath` is undefined while some interview has a failed request. */
export type InterviewTurnsReport = { resultPath?: string; interviews: number; finished: number; failed: number; steps: StageSummary[] };

/**
 * `wgpu-char interview turns`: per question (the interview's topic) `rounds` exchanges; the
 * interviewer model sees the whole history, the character the last 8 entries. All interviews
 * advance in lockstep, one request per interview per step, through the pipeline's runner (two
 * logs: interviewer and character), so each step's prompts are rebuilt from the logged replies
 * and a re-run resumes at the first missing step. An interview whose request failed after all
 * attempts stops there; the output is written once every interview is finished (a re-run retries).
 *
 * As in the original: a character reply may be a thinking turn (it is that turn's answer, no
 * re-ask), each of its elements is cut at its first blank line, and the interviewer sees the
 * character's last element.
 */
export async function runInterviewTurns(opts: InterviewTurnsOptions): Promise<InterviewTurnsReport> {
  const setting = interviewSetting(opts.shortName, opts.fullName);
  const logDir = join(opts.outDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const base = `${opts.shortName}_${opts.label}`;
  const release = acquireLockUntilExit(join(logDir, `${base}.turns.lock`), {
    onTakeover: (pid) => opts.progressStream?.write(`wgpu-char: ${logDir}: taking over the lock of pid ${pid}, which is no longer running\n`),
  });
  try {
    const character = new CompletionClient({ ...opts.settings, model: opts.model, endpoint: 'completions', stop: [EOT], systemPrompt: '' }, opts.retry);
    const interviewer = new CompletionClient({ ...opts.interviewer, endpoint: 'chat' }, opts.retry);
    const state = opts.questions.map((q, qid) => ({
      qid,
      topic: q.question,
      header: fillTemplate(opts.interviewerTemplate, { character: setting.fullName, topic: q.question, profile: opts.profile, loc_time: setting.location, status: setting.status }, 'interviewer prompt') + '\n\n',
      interviewerHistory: [] as Turn[],
      characterHistory: [] as Turn[],
      content: [] as TurnsRecord['content'],
      failed: false,
    }));
    const steps: StageSummary[] = [];
    for (let turn = 0; turn < opts.rounds; turn++) {
      for (const role of ['interviewer', 'character'] as const) {
        const live = state.filter((s) => !s.failed);
        if (live.length === 0) break;
        const items = live.map((s) => ({
          id: `q${s.qid}-t${turn}-${role}`,
          s,
          prompt: role === 'interviewer' ? interviewerPrompt(s.header, opts.shortName, s.interviewerHistory) : buildChatPrompt(setting, s.characterHistory),
        }));
        const { summary, results } = await runStage({
          stage: `${role === 'interviewer' ? 'ask' : 'answer'} ${turn + 1}/${opts.rounds}`,
          items,
          logPath: join(logDir, `${base}.turns.${role}.log.jsonl`),
          client: role === 'interviewer' ? interviewer : character,
          concurrency: opts.concurrency,
          progressStream: opts.progressStream,
          progressIntervalMs: opts.progressIntervalMs,
        });
        steps.push(summary);
        for (const { id, s } of items) {
          const ok = results.get(id);
          if (!ok) {
            s.failed = true;
            continue;
          }
          if (role === 'interviewer') {
            const q = parseInterviewerReply(ok.completion);
            s.content.push({ turn_id: turn, turn_role: 'interviewer', turn_content: [q] });
            s.interviewerHistory.push(q);
            s.characterHistory.push(q);
          } else {
            const a = parseCharacterReply(opts.shortName, ok.completion);
            const cut = { ...a, content: a.content.split('\n\n')[0]! };
            s.content.push({ turn_id: turn, turn_role: 'character', turn_content: [cut] });
            s.interviewerHistory.push(cut);
            s.characterHistory.push(cut);
          }
        }
      }
    }
    const finished = state.filter((s) => !s.failed);
    const lines = finished.map((s): TurnsRecord => ({ character: setting.fullName, model: opts.model, topic: s.topic, qid: s.qid, max_turns: opts.rounds, finished: true, content: s.content }));
    let resultPath: string | undefined;
    if (finished.length === state.length) {
      const dir = join(opts.outDir, resultDirName(opts.shortName, opts.label, 'turns'));
      mkdirSync(dir, { recursive: true });
      resultPath = join(dir, 'interview.jsonl');
      writeFileAtomic(resultPath, lines.map((l) => JSON.stringify(l) + '\n').join(''));
    }
    return { resultPath, interviews: state.length, finished: finished.length, failed: state.length - finished.length, steps };
  } finally {
    release();
  }
}
