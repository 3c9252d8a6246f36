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
