/**
 * `wgpu-char score`: the judge prompts filled as the original fills them, the score parse rule,
 * the aggregation, and released interviews of two characters (Beethoven and Hermione, single-turn,
 * sft/chatgpt/alpaca-7b/vicuna-7b; two multi-turn files) scored against a scripted judge, resumed
 * and re-run through retried faults with identical results.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.ts';
import { describeResultsFile, findResultsFiles, judgePrompt, loadJudgePrompts, parseScore, profileLead, readJudgeItems, singleReplyText, turnsInteractions } from '../src/eval/judge.ts';
import type { ScoresJson } from '../src/eval/score.ts';
import { bootstrapMeanOfMeans } from '../src/eval/stats.ts';
import { hashScore, startScriptedServer, type ScriptedRequest } from '../src/eval/scripted-server.ts';
import { FAST, runEvalCli } from './fixtures/eval/helpers.ts';

const RELEASED = 'test/fixtures/eval/released';
const SINGLE = `${RELEASED}/interview_single`;
const TURNS = `${RELEASED}/interview_turns`;

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'wgpu-char-score-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('score parse rule', () => {
  it('takes the last line that is one integer 1-7, else nothing', () => {
    expect(parseScore('Reasoning.\n\n5\n\n6')).toBe(6);
    expect(parseScore('Step 1 ...\n  4  \nAt the end: 4\n')).toBe(4);
    expect(parseScore('4\r\n')).toBe(4);
    // The original's `\s\d` would have taken the 7 of "out of 7" or the 3 of "step 3".
    expect(parseScore('I would give it a 5 out of 7')).toBeUndefined();
    expect(parseScore('Score: 6')).toBeUndefined();
    expect(parseScore('8\n0\n10')).toBeUndefined();
    expect(parseScore('')).toBeUndefined();
  });
});

describe('judge prompts as the original fills them', () => {
  const prompts = loadJudgePrompts(['memory', 'values', 'personality', 'hallucination', 'stability']);

  it('single-turn: the profile lead, the interview setting, "Man: q\\nShort: reply"', () => {
    const file = describeResultsFile(`${SINGLE}/Beethoven_sft_result/2023-00-00-00-00-00.json`);
    expect(file).toMatchObject({ protocol: 'single', character: 'Beethoven', model: 'sft' });
    const [item] = readJudgeItems(file);
    const records = JSON.parse(readFileSync(file.path, 'utf8'));
    expect(item!.interactions).toBe(`Man: What do you think of your father?\nBeethoven: ${records[0].reply[0].content.split('\n\n')[0].replace(/\*.*?\*/g, '')}`);
    const prompt = judgePrompt(prompts.get('memory')!, 'Beethoven', profileLead('Beethoven'), item!.interactions);
    expect(prompt.startsWith('You wiil be given responses written by an AI assistant mimicing the character Beethoven. Your task is to rate the performance of Beethoven')).toBe(true);
    expect(prompt).toContain('***\n[Profile]\nLudwig van Beethoven (baptised 17 December 1770 – 26 March 1827) was a German composer and pianist.');
    expect(prompt).toContain('[Background]\nLocation: Coffee Shop - Afternoon\nStatus: Beethoven is casually chatting with a man from the 21st century. Beethoven fully trusts the man who engage in conversation and shares everything Beethoven knows without reservation.\n***\n[Interactions]\nMan: What do you think of your father?\nBeethoven: ');
    expect(prompt.endsWith('At the end, repeat just the selected score again by itself on a new line.')).toBe(true);
  });

  it('single-turn replies: a dict or the first (speaking) element, cut at a blank line, *...* removed, <|NONSTOP|> dropped', () => {
    expect(singleReplyText({ role: 'B', action: '(speaking)', content: 'Yes *smiles* indeed.\n\nMore.' })).toBe('Yes  indeed.');
    expect(singleReplyText([{ role: 'B', action: '(thinking)', content: 'Hm.' }, { role: 'B', action: '(speaking)', content: 'Hello<|NONSTOP|>' }])).toBe('Hello');
    expect(singleReplyText([{ role: 'B', action: '(thinking)', content: 'Hm.' }])).toBe('');
    const vicuna = readJudgeItems(describeResultsFile(`${SINGLE}/Hermonie_vicuna-7b_result/2023-00-00-00-00-00.json`));
    expect(vicuna.every((i) => !i.interactions.includes('<|NONSTOP|>') && !i.interactions.includes('\n\n'))).toBe(true);
  });

  it('"Hermonie" (the original\'s spelling in its single-turn folders) is Hermione', () => {
    const file = describeResultsFile(`${SINGLE}/Hermonie_chatgpt_result/2023-00-00-00-00-00.json`);
    expect(file.character).toBe('Hermione');
    expect(readJudgeItems(file)[0]!.interactions).toMatch(/^Man: .*\nHermione: /);
  });

  it('multi-turn: each turn\'s first element if exactly (speaking); thinking and "((speaking)" turns dropped', () => {
    const caesar = describeResultsFile(`${TURNS}/multiturn_Caesar_chatgpt_result/2023-00-00-00-00-00.jsonl`);
    expect(caesar).toMatchObject({ protocol: 'turns', character: 'Caesar', model: 'chatgpt' });
    const line = JSON.parse(readFileSync(caesar.path, 'utf8').split('\n')[0]!);
    const kept = line.content.filter((e: { turn_content: { action: string }[] }) => e.turn_content[0]!.action === '(speaking)');
    expect(kept.length).toBeLessThan(line.content.length);
    const text = turnsInteractions(line.content);
    expect(text.split('\n').length).toBeGreaterThanOrEqual(kept.length);
    expect(text.startsWith(`Man: ${line.content[0].turn_content[0].content}`)).toBe(true);
    expect(text).not.toContain('((speaking)');
    const beethoven = readJudgeItems(describeResultsFile(`${TURNS}/multiturn_Beethoven_sft_result/2023-00-00-00-00-00.jsonl`));
    const raw = JSON.parse(readFileSync(`${TURNS}/multiturn_Beethoven_sft_result/2023-00-00-00-00-00.jsonl`, 'utf8').split('\n')[0]!);
    const thinking = raw.content.find((e: { turn_content: { action: string }[] }) => e.turn_content[0]!.action === '(thinking)').turn_content[0].content;
    expect(beethoven[0]!.interactions).not.toContain(thinking);
    expect(beethoven[0]!.index).toBe(raw.qid);
  });

  it('results paths: folders are searched, misnamed ones refused with one line', () => {
    expect(findResultsFiles(RELEASED)).toHaveLength(10);
    const bad = tempDir();
    writeFileSync(join(bad, 'x.json'), '[]');
    expect(() => findResultsFiles(join(bad, 'x.json'))).toThrow(/must be named <Short>_<model>_result/);
    expect(() => findResultsFiles(bad)).toThrow(UserError);
    mkdirSync(join(bad, 'multiturn_A_m_result'));
    writeFileSync(join(bad, 'multiturn_A_m_result', 'r.json'), '[]');
    expect(() => findResultsFiles(bad)).toThrow(/a \.json \(single-turn\) file in a folder named multiturn_A_m_result/);
    expect(() => profileLead('Nobody')).toThrow(/no profile for Nobody: pass --profiles DIR/);
  });
});

describe('bootstrap', () => {
  it('is seeded, brackets the mean, and averages group means with equal weight', () => {
    const a = bootstrapMeanOfMeans([[1, 2, 3, 4, 5, 6, 7, 4, 4]], 500, 7)!;
    expect(bootstrapMeanOfMeans([[1, 2, 3, 4, 5, 6, 7, 4, 4]], 500, 7)).toEqual(a);
    expect(a.mean).toBe(4);
    expect(a.ci95[0]).toBeLessThan(4);
    expect(a.ci95[1]).toBeGreaterThan(4);
    expect(bootstrapMeanOfMeans([[5, 5, 5]], 100, 0)).toEqual({ mean: 5, ci95: [5, 5], n: 3 });
    expect(bootstrapMeanOfMeans([[7], [1, 1, 1]], 100, 0)).toEqual({ mean: 4, ci95: [4, 4], n: 4 });
    expect(bootstrapMeanOfMeans([[], []], 100, 0)).toBeUndefined();
  });
});

/** The scripted judge: a hash score of the prompt on its own line, except for about one prompt in eight, which gets "5 out of 7" (unparsed). */
function judge(req: ScriptedRequest): string {
  if (hashScore(req.prompt + '#unparsed') === 1) return 'Reasoning.\nI would rate it 5 out of 7.';
  const s = hashScore(req.prompt);
  return `Reasoning, step 3 of 4.\n${s}\n\n${s}`;
}

function expectedScores(prompt: string): number | undefined {
  return hashScore(prompt + '#unparsed') === 1 ? undefined : hashScore(prompt);
}

describe('wgpu-char score on released interviews', () => {
  it('scores every file and dimension, aggregates, writes json/markdown/svg, and resumes', async () => {
    const server = await startScriptedServer({ judge });
    const out = tempDir();
    const args = ['score', '--results', SINGLE, TURNS, '--judge-base-url', server.url, '--judge-model', 'judge-1', '--out', out, '--concurrency', '4', ...FAST];
    try {
      const run = await runEvalCli(args);
      expect(run.exitCode, run.stdout + run.stderr).toBe(0);
      // 8 single-turn files x 10 questions x 4 dimensions + 2 multi-turn files x 2 interviews x 5 dimensions.
      expect(server.requests).toHaveLength(8 * 10 * 4 + 2 * 2 * 5);
      const body = server.requests[0]!.body;
      expect(body).toMatchObject({ model: 'judge-1', temperature: 0, top_p: 0.95, max_tokens: 512 });
      expect((body.messages as { role: string; content: string }[])[0]).toEqual({ role: 'system', content: 'You are a helpful and accurate assistant.' });

      const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as ScoresJson;
      expect(scores.results).toHaveLength(8 * 4 + 2 * 5);
      const byPrompt = new Map(server.requests.map((r) => [r.prompt, expectedScores(r.prompt)]));
      const log = readFileSync(join(out, 'judge.log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      let unparsedTotal = 0;
      for (const row of scores.results) {
        const prompts = log.filter((r) => r.id.startsWith(`${row.dimension}:${row.file}:`)).map((r) => r.prompt as string);
        expect(prompts.length, row.file).toBe(row.protocol === 'single' ? 10 : 2);
        const parsed = prompts.map((p) => byPrompt.get(p)).filter((s): s is number => s !== undefined);
        expect(row.n + row.unparsed).toBe(prompts.length);
        expect(row.n).toBe(parsed.length);
        expect(row.missing).toBe(0);
        unparsedTotal += row.unparsed;
        if (parsed.length > 0) {
          expect(row.mean).toBeCloseTo(parsed.reduce((a, b) => a + b, 0) / parsed.length, 12);
          expect(row.ci95![0]).toBeLessThanOrEqual(row.mean!);
          expect(row.ci95![1]).toBeGreaterThanOrEqual(row.mean!);
        }
      }
      expect(unparsedTotal).toBeGreaterThan(0);
      expect(run.stdout).toContain(`${unparsedTotal} judge reply(s) without a score line`);
      expect(new Set(scores.results.map((r) => r.character))).toEqual(new Set(['Beethoven', 'Hermione', 'Caesar']));
      expect(scores.results.some((r) => r.protocol === 'single' && r.dimension === 'stability')).toBe(false);

      // Per model: the mean of the two characters' file means.
      for (const g of scores.by_model.filter((r) => r.protocol === 'single')) {
        const files = scores.results.filter((r) => r.protocol === 'single' && r.model === g.model && r.dimension === g.dimension);
        expect(files).toHaveLength(2);
        expect(g.mean).toBeCloseTo((files[0]!.mean! + files[1]!.mean!) / 2, 12);
        expect(g.n).toBe(files[0]!.n + files[1]!.n);
      }
      expect(scores.by_model.filter((r) => r.protocol === 'single')).toHaveLength(4 * 4);
      expect(scores.by_character.filter((r) => r.protocol === 'single').map((r) => r.character).sort()).toEqual([...Array(4).fill('Beethoven'), ...Array(4).fill('Hermione')]);

      const md = readFileSync(join(out, 'scores.md'), 'utf8');
      expect(md).toContain('| model | memory | values | personality | hallucination |');
      expect(md).toMatch(/\| sft \| \d\.\d\d \[\d\.\d\d, \d\.\d\d\] \(n \d+/);
      const svg = readFileSync(join(out, 'scores-single.svg'), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.match(/<title>/g)).toHaveLength(4 * 4);
      expect(existsSync(join(out, 'scores-turns.svg'))).toBe(true);

      // A re-run sends nothing and writes the same scores.
      const before = readFileSync(join(out, 'scores.json'), 'utf8');
      const again = await runEvalCli(args);
      expect(again.exitCode).toBe(0);
      expect(server.requests).toHaveLength(8 * 10 * 4 + 2 * 2 * 5);
      expect(again.stdout).toContain('0 sent this run, 340 from earlier runs');
      expect(readFileSync(join(out, 'scores.json'), 'utf8')).toBe(before);

      // Faults (429, 500 on a first attempt) are retried and change nothing.
      const faultyCount = new Map<string, number>();
      const faulty = await startScriptedServer({ judge: (req) => {
        const n = faultyCount.get(req.prompt) ?? 0;
        faultyCount.set(req.prompt, n + 1);
        if (n === 0 && hashScore(req.prompt + 'fault') <= 2) return { status: hashScore(req.prompt + 'fault') === 1 ? 429 : 500 };
        return judge(req);
      } });
      const out2 = tempDir();
      try {
        const f = await runEvalCli(['score', '--results', SINGLE, TURNS, '--judge-base-url', faulty.url, '--judge-model', 'judge-1', '--out', out2, '--concurrency', '8', ...FAST]);
        expect(f.exitCode, f.stdout).toBe(0);
        expect(faulty.requests.length).toBeGreaterThan(340);
        const s2 = JSON.parse(readFileSync(join(out2, 'scores.json'), 'utf8')) as ScoresJson;
        expect(s2.results).toEqual(scores.results);
        expect(readFileSync(join(out2, 'judge.log.jsonl'), 'utf8')).toContain('"event":"retry"');
      } finally {
        await faulty.close();
      }
    } finally {
      await server.close();
    }
  }, 60_000);

  it('a judge that keeps failing leaves items missing and exits 2; bad options are one-line errors', async () => {
    const server = await startScriptedServer({ judge: (req) => (req.prompt.includes('What do you think of your father?') ? { status: 400 } : judge(req)) });
    const out = tempDir();
    try {
      const run = await runEvalCli(['score', '--results', `${SINGLE}/Beethoven_sft_result`, '--judge-base-url', server.url, '--judge-model', 'j', '--out', out, '--dimensions', 'memory', ...FAST]);
      expect(run.exitCode).toBe(2);
      const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as ScoresJson;
      expect(scores.results).toHaveLength(1);
      expect(scores.results[0]).toMatchObject({ dimension: 'memory', missing: 1 });
      expect(scores.results[0]!.n + scores.results[0]!.unparsed).toBe(9);
    } finally {
      await server.close();
    }
    await expect(runEvalCli(['score', '--results', SINGLE, '--judge-base-url', 'http://127.0.0.1:9/v1', '--judge-model', 'j', '--out', out, '--dimensions', 'memory,wit'])).rejects.toThrow(
      '--dimensions: must be a comma-separated list of memory, values, personality, hallucination, stability (got "memory,wit")',
    );
  });
});
