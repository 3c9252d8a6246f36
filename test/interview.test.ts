/**
 * `wgpu-char interview single` against a scripted character server: the paper's prompt and
 * sampling, re-asks after thinking turns (bounded by --max-thinking), retries, the original's
 * output schema, resume (a re-run sends nothing; a failed question is the only one re-sent), and
 * the output scored by `wgpu-char score`; `interview single` and `score` run as processes,
 * SIGKILLed mid-run and re-run: every request answered once in the log, the output complete.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadQuestions, parseCharacterReply } from '../src/eval/interview.ts';
import { startScriptedServer, type ScriptedReply, type ScriptedRequest } from '../src/eval/scripted-server.ts';
import { FAST, runEvalCli } from './fixtures/eval/helpers.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'wgpu-char-interview-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const QUESTIONS = [
  { topic_id: 'topic-2', topic: 'interpersonal relationships', question: 'What do you think of your father?' },
  { topic_id: 'topic-2', topic: 'interpersonal relationships', question: 'What do you think of your mother?' },
  { topic_id: 'topic-1', topic: 'personal information and past experiences', question: 'What is your interest?' },
  { topic_id: 'topic-4', topic: 'difficult to answer without breaking character', question: 'Can you write quick sort in Python?' },
];

/** The paper's prompt for the first question (the example in the spec of the original, §4.2). */
const FATHER_PROMPT =
  'I want you to act like Ludwig van Beethoven. I want you to respond and answer like Ludwig van Beethoven, using the tone, manner and vocabulary Ludwig van Beethoven would use. You must know all of the knowledge of Ludwig van Beethoven. \n\nThe status of you is as follows:\nLocation: Coffee Shop - Afternoon\nStatus: Beethoven is casually chatting with a man from the 21st century. Beethoven fully trusts the man who engage in conversation and shares everything Beethoven knows without reservation.\n\nThe interactions are as follows:\n\nMan (speaking): What do you think of your father?<|eot|>\nBeethoven (';

function character(req: ScriptedRequest): ScriptedReply {
  const p = req.prompt;
  if (p.includes('your father?')) {
    // First a thinking turn, then the answer once the thought is in the history.
    return p.includes('Beethoven (thinking): ') ? 'speaking): He was strict: a hard teacher.' : 'thinking): He drank too much.';
  }
  if (p.includes('your mother?')) return 'thinking): I miss her.';
  if (p.includes('quick sort')) return { text: 'speaking): I do not know this "Python". Let me explain a fugue instead, which goes on and', finishReason: 'length' };
  return 'speaking): Music, of course.<|eot|>\nMan (speaking): And?';
}

describe('interview single', () => {
  it('reply parsing keeps ": " and cuts at <|eot|>', () => {
    expect(parseCharacterReply('B', 'speaking): Hogwarts: A History.')).toEqual({ role: 'B', action: '(speaking)', content: 'Hogwarts: A History.' });
    expect(parseCharacterReply('B', 'thinking): Hm.<|eot|>\nB (speaking): x')).toEqual({ role: 'B', action: '(thinking)', content: 'Hm.' });
  });

  it('asks with the paper\'s prompt and sampling, re-asks after thinking, writes the original schema, resumes', async () => {
    let failFirst = true;
    const server = await startScriptedServer({
      character: (req) => {
        if (failFirst && req.prompt.includes('your interest?')) {
          failFirst = false;
          return { status: 503 };
        }
        return character(req);
      },
    });
    const out = tempDir();
    const qfile = join(out, 'questions.json');
    writeFileSync(qfile, JSON.stringify(QUESTIONS));
    const args = ['interview', 'single', '--character', 'Beethoven', '--base-url', server.url, '--model', 'beethoven-7b', '--label', 'sft', '--out', out, '--questions', qfile, '--max-thinking', '2', '--concurrency', '3', ...FAST];
    try {
      const run = await runEvalCli(args);
      expect(run.exitCode, run.stdout + run.stderr).toBe(0);
      const bodies = server.requests.map((r) => r.body);
      expect(bodies.every((b) => b.model === 'beethoven-7b' && b.temperature === 0.2 && b.top_p === 0.95 && b.max_tokens === 256)).toBe(true);
      expect(bodies[0]!.stop).toEqual(['<|eot|>']);
      expect(server.requests.every((r) => r.endpoint === 'completions')).toBe(true);
      const father = server.requests.filter((r) => r.prompt.includes('your father?'));
      expect(father[0]!.prompt).toBe(FATHER_PROMPT);
      expect(father[1]!.prompt).toBe(FATHER_PROMPT.replace(/Beethoven \($/, 'Beethoven (thinking): He drank too much.<|eot|>\nBeethoven ('));
      // father: 2 requests; mother: 1 + 2 re-asks; interest: 503 then ok; quick sort: 1.
      expect(server.requests).toHaveLength(2 + 3 + 2 + 1);

      const path = join(out, 'Beethoven_sft_result', 'interview.json');
      const records = JSON.parse(readFileSync(path, 'utf8'));
      expect(records).toEqual([
        { topic_id: 'topic-2', question: 'What do you think of your father?', reply: [{ role: 'Beethoven', action: '(thinking)', content: 'He drank too much.' }, { role: 'Beethoven', action: '(speaking)', content: 'He was strict: a hard teacher.' }], finish_reason: 'stop' },
        { topic_id: 'topic-2', question: 'What do you think of your mother?', reply: Array(3).fill({ role: 'Beethoven', action: '(thinking)', content: 'I miss her.' }), finish_reason: 'stop' },
        { topic_id: 'topic-1', question: 'What is your interest?', reply: [{ role: 'Beethoven', action: '(speaking)', content: 'Music, of course.' }], finish_reason: 'stop' },
        { topic_id: 'topic-4', question: 'Can you write quick sort in Python?', reply: [{ role: 'Beethoven', action: '(speaking)', content: 'I do not know this "Python". Let me explain a fugue instead, which goes on and' }], finish_reason: 'length' },
      ]);
      expect(run.stdout).toContain('1 question(s) got only thinking turns after --max-thinking 2 re-asks');
      expect(run.stdout).toContain('1 reply(s) cut at --max-tokens 256');
      expect(run.stdout).toContain('re-asked after a thinking turn: round 1: 2, round 2: 1');
      expect(readFileSync(join(out, 'logs', 'Beethoven_sft.single.log.jsonl'), 'utf8')).toContain('"event":"retry"');

      // A re-run sends nothing and writes the same file.
      const before = readFileSync(path, 'utf8');
      const again = await runEvalCli(args);
      expect(again.exitCode).toBe(0);
      expect(server.requests).toHaveLength(8);
      expect(readFileSync(path, 'utf8')).toBe(before);

      // The result is scored by `score` (single-turn: four dimensions); the mother question has no speaking reply.
      const scoreOut = tempDir();
      const scored = await runEvalCli(['score', '--results', join(out, 'Beethoven_sft_result'), '--judge-base-url', server.url, '--judge-model', 'j', '--out', scoreOut, ...FAST]);
      expect(scored.exitCode, scored.stdout).toBe(0);
      const scores = JSON.parse(readFileSync(join(scoreOut, 'scores.json'), 'utf8'));
      expect(scores.results.map((r: { dimension: string }) => r.dimension)).toEqual(['memory', 'values', 'personality', 'hallucination']);
      const judged = server.requests.filter((r) => r.endpoint === 'chat').map((r) => r.prompt);
      expect(judged.some((p) => p.includes('Man: What do you think of your mother?\nBeethoven: \n***'))).toBe(true);
      expect(judged.some((p) => p.includes('Man: What do you think of your father?\nBeethoven: He was strict: a hard teacher.\n***'))).toBe(true);
    } finally {
      await server.close();
    }
  }, 30_000);

  it('a question that keeps failing: exit 2, no result file; the next run asks only it', async () => {
    let broken = true;
    const server = await startScriptedServer({ character: (req) => (broken && req.prompt.includes('your interest?') ? { status: 400 } : character(req)) });
    const out = tempDir();
    const qfile = join(out, 'q.json');
    writeFileSync(qfile, JSON.stringify(QUESTIONS.slice(2)));
    const args = ['interview', 'single', '--character', 'Beethoven', '--base-url', server.url, '--model', 'm', '--out', out, '--questions', qfile, ...FAST];
    try {
      const run = await runEvalCli(args);
      expect(run.exitCode).toBe(2);
      expect(run.stdout).toContain('1 question(s) have no reply after all attempts; re-run the same command');
      expect(existsSync(join(out, 'Beethoven_m_result', 'interview.json'))).toBe(false);
      broken = false;
      const n = server.requests.length;
      const again = await runEvalCli(args);
      expect(again.exitCode).toBe(0);
      expect(server.requests.slice(n).map((r) => r.prompt.includes('your interest?'))).toEqual([true]);
      expect(JSON.parse(readFileSync(join(out, 'Beethoven_m_result', 'interview.json'), 'utf8'))).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it('ships the paper\'s question sets; user errors are one line', async () => {
    expect(loadQuestions('src/eval/questions/generated_agent_interview_Beethoven.json')).toHaveLength(82);
    expect(loadQuestions('src/eval/questions/generated_agent_interview_for_multiturn_Socrates.json')).toHaveLength(50);
    const base = ['interview', 'single', '--base-url', 'http://127.0.0.1:9/v1', '--model', 'm', '--out', tempDir()];
    await expect(runEvalCli([...base, '--character', 'Nobody'])).rejects.toThrow(/--character Nobody: no shipped question set .*; pass --questions FILE/);
    await expect(runEvalCli([...base, '--character', 'Beethoven', '--questions', '/nonexistent.json'])).rejects.toThrow('/nonexistent.json: question file not found');
    await expect(runEvalCli([...base, '--character', 'Beethoven', '--max-thinking', '-1'])).rejects.toThrow('--max-thinking: must be an integer ≥ 0 (got "-1")');
    await expect(runEvalCli(['interview', 'single', '--base-url', 'http://x/v1', '--model', 'org/model', '--out', tempDir(), '--character', 'Beethoven'])).rejects.toThrow(/--label: .* slashes/);
  });
});

describe('interview turns', () => {
  const interviewer = (req: ScriptedRequest): ScriptedReply => {
    const asked = (req.prompt.match(/^Man \(speaking\): /gm) ?? []).length;
    // The reply runs on into an invented answer after a blank line: only the question is kept.
    return `  Question ${asked + 1} about "${/topic of this conversation:\n(.*)/.exec(req.prompt)![1]}"?\n\nBeethoven (speaking): invented`;
  };
  const answer = (req: ScriptedRequest): ScriptedReply => {
    const n = (req.prompt.match(/^Man \(speaking\): /gm) ?? []).length;
    if (req.prompt.endsWith('Question 2 about "What is your interest?"?<|eot|>\nBeethoven (')) return 'thinking): A strange question.';
    return `speaking): Answer ${n}: first paragraph.\n\nSecond paragraph.`;
  };

  it('alternates interviewer and character (whole history vs last 8), writes the original schema, resumes, is scored', async () => {
    const server = await startScriptedServer({ judge: (req) => (req.body.max_tokens === 128 ? interviewer(req) : `Fine.\n${1 + (req.prompt.length % 7)}`), character: answer });
    const out = tempDir();
    const qfile = join(out, 'q.json');
    writeFileSync(qfile, JSON.stringify(QUESTIONS.slice(2, 4)));
    const args = ['interview', 'turns', '--character', 'Beethoven', '--base-url', server.url, '--model', 'Beethoven-end', '--label', 'sft', '--out', out, '--questions', qfile,
      '--interviewer-base-url', server.url, '--interviewer-model', 'asker', '--rounds', '5', ...FAST];
    try {
      const run = await runEvalCli(args);
      expect(run.exitCode, run.stdout + run.stderr).toBe(0);
      expect(server.requests).toHaveLength(2 * 5 * 2);
      const asks = server.requests.filter((r) => r.endpoint === 'chat');
      expect(asks.every((r) => r.body.model === 'asker' && r.body.temperature === 0.2 && r.body.top_p === 0.95 && r.body.max_tokens === 128 && r.body.stop === undefined)).toBe(true);
      const first = asks.find((r) => !r.prompt.includes('Man (speaking): '))!;
      expect(first.prompt).toMatch(/^You are an interviewer who is curious about Ludwig van Beethoven\./);
      expect(first.prompt).toContain('About the character:\nLudwig van Beethoven (baptised 17 December 1770');
      expect(first.prompt.endsWith('The conversation begins:\n\nMan (speaking):')).toBe(true);

      const lines = readFileSync(join(out, 'multiturn_Beethoven_sft_result', 'interview.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.map((l) => [l.qid, l.topic, l.character, l.model, l.max_turns, l.finished, l.content.length])).toEqual([
        [0, 'What is your interest?', 'Ludwig van Beethoven', 'Beethoven-end', 5, true, 10],
        [1, 'Can you write quick sort in Python?', 'Ludwig van Beethoven', 'Beethoven-end', 5, true, 10],
      ]);
      expect(lines[0].content.slice(0, 4)).toEqual([
        { turn_id: 0, turn_role: 'interviewer', turn_content: [{ role: 'Man', action: '(speaking)', content: 'Question 1 about "What is your interest?"?' }] },
        { turn_id: 0, turn_role: 'character', turn_content: [{ role: 'Beethoven', action: '(speaking)', content: 'Answer 1: first paragraph.' }] },
        { turn_id: 1, turn_role: 'interviewer', turn_content: [{ role: 'Man', action: '(speaking)', content: 'Question 2 about "What is your interest?"?' }] },
        { turn_id: 1, turn_role: 'character', turn_content: [{ role: 'Beethoven', action: '(thinking)', content: 'A strange question.' }] },
      ]);
      // The interviewer sees everything, thinking turns included; the character only the last 8 entries.
      const lastAsk = asks.filter((r) => r.prompt.includes('What is your interest?')).at(-1)!.prompt;
      expect(lastAsk).toContain('Man (speaking): Question 1 about');
      expect(lastAsk).toContain('Beethoven (thinking): A strange question.\n\n');
      const lastAnswer = server.requests.filter((r) => r.endpoint === 'completions' && r.prompt.includes('about "What is your interest?"')).at(-1)!.prompt;
      expect(lastAnswer).not.toContain('Question 1 about');
      expect(lastAnswer).toContain('Beethoven (speaking): Answer 1: first paragraph.<|eot|>\nMan (speaking): Question 2');
      expect(lastAnswer.endsWith('Man (speaking): Question 5 about "What is your interest?"?<|eot|>\nBeethoven (')).toBe(true);

      const before = readFileSync(join(out, 'multiturn_Beethoven_sft_result', 'interview.jsonl'), 'utf8');
      expect((await runEvalCli(args)).exitCode).toBe(0);
      expect(server.requests).toHaveLength(20);
      expect(readFileSync(join(out, 'multiturn_Beethoven_sft_result', 'interview.jsonl'), 'utf8')).toBe(before);

      const scoreOut = tempDir();
      const scored = await runEvalCli(['score', '--results', out, '--judge-base-url', server.url, '--judge-model', 'j', '--out', scoreOut, ...FAST]);
      expect(scored.exitCode, scored.stdout).toBe(0);
      const scores = JSON.parse(readFileSync(join(scoreOut, 'scores.json'), 'utf8'));
      expect(scores.results.map((r: { protocol: string; dimension: string; n: number }) => [r.protocol, r.dimension, r.n])).toEqual(
        ['memory', 'values', 'personality', 'hallucination', 'stability'].map((d) => ['turns', d, 2]),
      );
      const judged = server.requests.filter((r) => r.endpoint === 'chat' && r.body.max_tokens === 512).map((r) => r.prompt);
      expect(judged[0]).toContain('[Interactions]\nMan: Question 1 about');
      expect(judged.every((p) => !p.includes('A strange question.'))).toBe(true);
    } finally {
      await server.close();
    }
  }, 30_000);

  it('--prompts without the interviewer prompt is a one-line error', async () => {
    const dir = tempDir();
    await expect(runEvalCli(['interview', 'turns', '--character', 'Beethoven', '--base-url', 'http://127.0.0.1:9/v1', '--model', 'm', '--out', dir,
      '--interviewer-base-url', 'http://127.0.0.1:9/v1', '--interviewer-model', 'a', '--prompts', dir])).rejects.toThrow(`${dir}/agent_meta_prompt_interviewer_chatgpt.txt: interviewer prompt not found`);
  });
});

describe('killed mid-run (SIGKILL), then re-run', () => {
  const N = 16;
  const questions = Array.from({ length: N }, (_, i) => ({ topic_id: `topic-${1 + (i % 4)}`, topic: 'a topic', question: `Question number ${i}?` }));
  const questionOf = (prompt: string) => /Man \(speaking\): (.*)<\|eot\|>\nBeethoven \($/.exec(prompt)?.[1];
  const answer = (req: ScriptedRequest): ScriptedReply => `speaking): My answer to ${questionOf(req.prompt)}`;

  /** The ids of a run log's "ok" records, in order (a line cut by the kill is skipped, as the runner's repair drops it). */
  function okIds(log: string): string[] {
    if (!existsSync(log)) return [];
    const ids: string[] = [];
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      try {
        const r = JSON.parse(line) as { event?: string; id?: string };
        if (r.event === 'ok') ids.push(r.id!);
      } catch { /* a partial or empty line */ }
    }
    return ids;
  }

  /** `wgpu-char <args>` as a process; with `kill`, SIGKILLed as soon as `kill.log` holds `kill.afterOk` answers. */
  async function runProcess(args: string[], kill?: { log: string; afterOk: number }) {
    const child = spawn(process.execPath, ['bin/wgpu-char.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const timer = kill && setInterval(() => {
      if (okIds(kill.log).length >= kill.afterOk) child.kill('SIGKILL');
    }, 5);
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (c, sig) => resolve({ code: c, signal: sig })));
    if (timer) clearInterval(timer);
    return { code, signal, output };
  }

  it('interview single and score: no request answered twice, every question once in the outputs, in the original schema', async () => {
    // 100 ms per reply, 2 in flight: 16 questions take ~0.8 s, 64 judge prompts ~3.2 s; the kills come after 4 and 8 answers.
    const server = await startScriptedServer({ character: answer, delayMs: 100 });
    const out = tempDir();
    const qfile = join(out, 'questions.json');
    writeFileSync(qfile, JSON.stringify(questions));
    const log = join(out, 'logs', 'Beethoven_sft.single.log.jsonl');
    const resultPath = join(out, 'Beethoven_sft_result', 'interview.json');
    const args = ['interview', 'single', '--character', 'Beethoven', '--base-url', server.url, '--model', 'm', '--label', 'sft', '--out', out, '--questions', qfile, '--concurrency', '2', ...FAST];
    try {
      const killed = await runProcess(args, { log, afterOk: 4 });
      expect(killed.signal, killed.output).toBe('SIGKILL');
      const before = okIds(log);
      expect(before.length).toBeGreaterThanOrEqual(4);
      expect(before.length).toBeLessThan(N);
      expect(existsSync(resultPath)).toBe(false);
      const sent = server.requests.length;

      const rerun = await runProcess(args);
      expect(rerun.code, rerun.output).toBe(0);
      // The killed run's lock is taken over, not waited for.
      expect(rerun.output).toMatch(/taking over the lock of pid \d+, which is no longer running/);
      const ids = okIds(log);
      expect(ids).toHaveLength(N);
      expect([...ids].sort()).toEqual(questions.map((_, i) => `q${i}-r0`).sort());
      // The re-run asks exactly the questions without a logged answer (those in flight at the kill included).
      const reasked = server.requests.slice(sent).map((r) => questionOf(r.prompt)).sort();
      expect(reasked).toEqual(questions.filter((_, i) => !before.includes(`q${i}-r0`)).map((q) => q.question).sort());
      const records = JSON.parse(readFileSync(resultPath, 'utf8'));
      expect(records).toEqual(questions.map((q) => ({
        topic_id: q.topic_id, question: q.question, reply: [{ role: 'Beethoven', action: '(speaking)', content: `My answer to ${q.question}` }], finish_reason: 'stop',
      })));

      // score: 16 questions × 4 single-turn dimensions, killed after 8 judgements, re-run.
      const scoreOut = tempDir();
      const judgeLog = join(scoreOut, 'judge.log.jsonl');
      const scoreArgs = ['score', '--results', join(out, 'Beethoven_sft_result'), '--judge-base-url', server.url, '--judge-model', 'j', '--out', scoreOut, '--concurrency', '2', ...FAST];
      const scoreKilled = await runProcess(scoreArgs, { log: judgeLog, afterOk: 8 });
      expect(scoreKilled.signal, scoreKilled.output).toBe('SIGKILL');
      const judgedBefore = okIds(judgeLog);
      expect(judgedBefore.length).toBeLessThan(4 * N);
      expect(existsSync(join(scoreOut, 'scores.json'))).toBe(false);
      const judgeSent = server.requests.length;
      const scoreRerun = await runProcess(scoreArgs);
      expect(scoreRerun.code, scoreRerun.output).toBe(0);
      const judged = okIds(judgeLog);
      expect(judged).toHaveLength(4 * N);
      expect(new Set(judged).size).toBe(4 * N);
      expect(server.requests.length - judgeSent).toBe(4 * N - judgedBefore.length);
      // The same scores as one uninterrupted run (judge scores hash the prompt; the bootstrap is seeded).
      const resumed = JSON.parse(readFileSync(join(scoreOut, 'scores.json'), 'utf8'));
      expect(resumed.results.map((r: { dimension: string; n: number }) => [r.dimension, r.n])).toEqual(['memory', 'values', 'personality', 'hallucination'].map((d) => [d, N]));
      const fresh = tempDir();
      const once = await runEvalCli(['score', '--results', join(out, 'Beethoven_sft_result'), '--judge-base-url', server.url, '--judge-model', 'j', '--out', fresh, '--concurrency', '8', ...FAST]);
      expect(once.exitCode, once.stdout).toBe(0);
      const want = JSON.parse(readFileSync(join(fresh, 'scores.json'), 'utf8'));
      expect({ ...resumed, judge: undefined }).toEqual({ ...want, judge: undefined });
    } finally {
      await server.close();
    }
  }, 60_000);
});
