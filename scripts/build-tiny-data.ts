/**
 * Builds the training data of the embedded default model from the Character-LLM release
 * (../shared/data/character-llm, CC BY-NC 4.0, profiles from Wikipedia):
 *
 * 1. `weights/tiny-corpus/pretrain.jsonl` (not committed): plain English for language pretraining —
 *    every profile paragraph and every interview turn of every character (all four models' runs),
 *    as `{prompt: "", output: text}` samples, so the SFT trainer trains on every token
 *    (ids = [BOS] + sp(text) + [EOS], targets from position 1).
 * 2. `examples/prompted_Beethoven.jsonl` (committed): a "prompted" SFT set in the paper's exact
 *    format, rebuilt from Beethoven's interview transcripts of the trained 7B model and of ChatGPT
 *    (the in-character runs): meta prompt (test-time setting: a coffee shop, chatting with a man
 *    from the 21st century) + `Man (speaking): ...<|eot|>\nBeethoven (speaking): ...<|eot|>` turns.
 *    Single-turn interviews give one sample each; multi-turn interviews give windows of up to
 *    `--window` question/answer rounds, so samples fit the tiny model's 512-token context.
 *
 *   npx tsx scripts/build-tiny-data.ts [--shared ../shared] [--window 2]
 * Deterministic: files are written in sorted path order with no randomness.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fillMetaPrompt, serializeTurns, type PromptedSample, type Turn } from '../src/data/prompted.ts';
import { writeFileAtomic } from '../src/util/atomic.ts';

const { values } = parseArgs({ options: { shared: { type: 'string', default: '../shared' }, window: { type: 'string', default: '2' } } });
const root = path.join(values.shared!, 'data', 'character-llm');
const window = Number(values.window);

function files(dir: string, ext: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(ext))
    .sort()
    .map((f) => path.join(dir, f));
}

interface RawTurn {
  role: string;
  action: string;
  content: string;
}

function clean(t: RawTurn): Turn {
  return { role: t.role.trim(), action: t.action?.trim() || '(speaking)', content: t.content.trim() };
}

/** Single-turn interview file: [{question, reply: turn | [turns]}] (the baselines' runs store one turn, not a list). */
function singleInterviews(file: string): { question: string; reply: Turn[] }[] {
  return (JSON.parse(readFileSync(file, 'utf8')) as { question: string; reply: RawTurn | RawTurn[] }[]).map((q) => ({
    question: q.question.trim(),
    reply: (Array.isArray(q.reply) ? q.reply : [q.reply]).map(clean),
  }));
}

/** Multi-turn interview file (JSONL): {content: [{turn_content: [turns]}]} → flat turn list. */
function multiInterviews(file: string): Turn[][] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { content: { turn_content: RawTurn[] }[] }).content.flatMap((c) => c.turn_content.map(clean)));
}

/** Max characters of one pretraining sample (~200 tokens of the 4k vocabulary: fits max-len 256 whole). */
const CHUNK_CHARS = 800;

/** Splits text into pieces of at most CHUNK_CHARS at line, then sentence, then word boundaries. */
function chunks(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  const flush = () => {
    if (cur.trim()) out.push(cur.trim());
    cur = '';
  };
  for (const unit of text.split(/(?<=\n)|(?<=[.!?]) /)) {
    if (cur.length + unit.length + 1 > CHUNK_CHARS) flush();
    if (unit.length > CHUNK_CHARS) {
      for (const w of unit.split(' ')) {
        if (cur.length + w.length + 1 > CHUNK_CHARS) flush();
        cur += (cur && !cur.endsWith('\n') ? ' ' : '') + w;
      }
    } else {
      cur += (cur && !cur.endsWith('\n') ? ' ' : '') + unit.trimEnd();
      if (unit.endsWith('\n')) cur += '\n';
    }
  }
  flush();
  return out;
}

function pretrainCorpus(): PromptedSample[] {
  const texts: string[] = [];
  for (const f of files(path.join(root, 'seed_data', 'profiles'), '.txt')) {
    for (const para of readFileSync(f, 'utf8').split(/\n\s*\n/)) texts.push(para.replace(/^# /, ''));
  }
  const results = path.join(root, 'gen_results');
  for (const f of files(path.join(results, 'interview_single'), '.json')) {
    for (const q of singleInterviews(f)) texts.push([q.question, ...q.reply.map((t) => t.content)].join('\n'));
  }
  for (const f of files(path.join(results, 'interview_turns'), '.jsonl')) {
    for (const turns of multiInterviews(f)) texts.push(turns.map((t) => t.content).join('\n'));
  }
  return texts.flatMap((t) => chunks(t.trim())).map((output) => ({ prompt: '', output }));
}

function beethovenPrompted(): PromptedSample[] {
  const prompt = fillMetaPrompt({
    character: 'Ludwig van Beethoven',
    loc_time: 'Coffee Shop - Afternoon',
    status: 'Beethoven is casually chatting with a man from the 21st century.',
  });
  const out: PromptedSample[] = [];
  const results = path.join(root, 'gen_results');
  for (const model of ['sft', 'chatgpt']) {
    for (const f of files(path.join(results, 'interview_single', `Beethoven_${model}_result`), '.json')) {
      for (const q of singleInterviews(f)) {
        const turns: Turn[] = [{ role: 'Man', action: '(speaking)', content: q.question }, ...q.reply.map((t) => ({ ...t, role: 'Beethoven' }))];
        out.push({ prompt, output: serializeTurns(turns, { protective: false }), source: `interview_single/${model}` });
      }
    }
    for (const f of files(path.join(results, 'interview_turns', `multiturn_Beethoven_${model}_result`), '.jsonl')) {
      for (const turns of multiInterviews(f)) {
        // Rounds: a Man turn followed by the character's turns.
        const rounds: Turn[][] = [];
        for (const t of turns) {
          if (t.role === 'Man' || rounds.length === 0) rounds.push([]);
          rounds[rounds.length - 1].push(t.role === 'Man' ? t : { ...t, role: 'Beethoven' });
        }
        for (let i = 0; i < rounds.length; i += window) {
          out.push({ prompt, output: serializeTurns(rounds.slice(i, i + window).flat(), { protective: false }), source: `interview_turns/${model}` });
        }
      }
    }
  }
  return out;
}

const jsonl = (samples: PromptedSample[]) => samples.map((s) => JSON.stringify(s)).join('\n') + '\n';
mkdirSync('weights/tiny-corpus', { recursive: true });
mkdirSync('examples', { recursive: true });
const pre = pretrainCorpus();
writeFileAtomic('weights/tiny-corpus/pretrain.jsonl', jsonl(pre));
const sft = beethovenPrompted();
writeFileAtomic('examples/prompted_Beethoven.jsonl', jsonl(sft));
console.log(`weights/tiny-corpus/pretrain.jsonl: ${pre.length} samples; examples/prompted_Beethoven.jsonl: ${sft.length} samples`);
