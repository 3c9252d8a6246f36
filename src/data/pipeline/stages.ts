import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import { writeFileAtomic } from '../../util/atomic.ts';
import { fillMetaPrompt, PROTECTIVE_LOC_TIME, protectiveStatus, serializeTurns, type PromptedSample, type Turn } from '../prompted.ts';
import { fillTemplate } from '../template.ts';
import { CompletionClient, type GenerationSettings, type RetryPolicy } from './client.ts';
import { type OkRecord } from './log.ts';
import { acquireLockUntilExit } from '../../util/lock.ts';
import { parseDialogue } from './parse-dialogue.ts';
import { parseScenes, type Reject } from './parse-scenes.ts';
import type { Profile } from './profile.ts';
import type { ProgressStream } from './progress.ts';
import { MersenneTwister, pythonChoicesIndices } from './random.ts';
import { runStage, type StageSummary, type WorkItem } from './runner.ts';
import type { Templates } from './template.ts';
import { countWords } from './text.ts';

/**
 * The four stages of experience reconstruction over one output folder:
 *
 *   profile --scenes--> scenes.jsonl --dialogues--> dialogues.jsonl --+
 *   profile --protective--> protective.jsonl -------------------------+--convert--> prompted_<Short>.jsonl
 *
 * Each generating stage keeps its request log (`<stage>.log.jsonl`, the only record of the API's
 * replies) and derives `<stage>.jsonl` and `<stage>.rejects.jsonl` from it, rewritten whole
 * (atomically) at the end of every run. So a run killed at any point leaves the log valid up to its
 * last line, and the next run re-sends only what has no reply yet.
 */

export const FILES = {
  character: 'character.json',
  lock: '.data.lock',
  stats: 'stats.json',
  log: (stage: StageName) => `${stage}.log.jsonl`,
  output: (stage: StageName) => `${stage}.jsonl`,
  rejects: (stage: StageName) => `${stage}.rejects.jsonl`,
  prompted: (shortName: string) => `prompted_${shortName}.jsonl`,
};
export type StageName = 'scenes' | 'dialogues' | 'protective';

/** A scene as written to scenes.jsonl (the original's keys, plus the paragraph index). */
export type SceneRecord = { source: string; type: string; location: string; background: string; paragraph: number; profile: string };
/** An experience as written to dialogues.jsonl. `status` is the scene's background (the original lost it: it looked for `- Background: ` in a prompt whose line is `- Status: `, so its `background` was always "."). */
export type DialogueRecord = { source: string; scene: string; type: string; location: string; status: string; setting: string[]; dialogue: Turn[] };
/** A protective experience as written to protective.jsonl. */
export type ProtectiveRecord = { source: string; paragraph: number; setting: string[]; dialogue: Turn[] };
/** A line of a rejects file: what was not used and why. */
export type RejectRecord = { source: string; reason: string; text: string };

export type ParseStats = { stage: StageName; replies: number; records: number; turns: number; rejectedBlocks: number; rejectedRecords: number; reasons: Map<string, number>; noBackground?: number };

export type RunContext = {
  outDir: string;
  settings: GenerationSettings;
  retry: RetryPolicy;
  concurrency: number;
  templates: Templates;
  progressStream?: ProgressStream;
  progressIntervalMs?: number;
  /** Experiences with fewer turns are rejected (the original's "SHT" rule). */
  minTurns?: number;
};

export type StageReport = { summary: StageSummary; parse: ParseStats };

// ---------------------------------------------------------------------------------------------
// Files

function writeJsonl(path: string, rows: unknown[]): void {
  writeFileAtomic(path, rows.map((row) => JSON.stringify(row) + '\n').join(''));
}

export function readJsonl<T>(path: string): T[] {
  const rows: T[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        rows.push(JSON.parse(line) as T);
      } catch {
        throw new UserError(`${path}:${i + 1}: not valid JSON`);
      }
    });
  return rows;
}

type CharacterFile = { full_name: string; short_name: string; profile_path: string; paragraphs: string[] };

/** The profile is copied into the output folder so later stages (and re-runs) need no --profile. */
export function saveCharacter(outDir: string, profile: Profile, profilePath: string): void {
  mkdirSync(outDir, { recursive: true });
  const data: CharacterFile = { full_name: profile.fullName, short_name: profile.shortName, profile_path: profilePath, paragraphs: profile.paragraphs };
  writeFileAtomic(join(outDir, FILES.character), JSON.stringify(data, null, 2) + '\n');
}

export function loadCharacter(outDir: string): Profile {
  const path = join(outDir, FILES.character);
  if (!existsSync(path)) throw new UserError(`${path}: not found; run \`wgpu-char data scenes --profile ...\` first, or pass --profile`);
  const data = JSON.parse(readFileSync(path, 'utf8')) as CharacterFile;
  return { fullName: data.full_name, shortName: data.short_name, paragraphs: data.paragraphs };
}

/** Holds the folder's lock (src/util/lock.ts, shared with `train`) for the duration of `work`. */
export async function withLock<T>(outDir: string, work: () => Promise<T>, onTakeover?: (pid: number) => void): Promise<T> {
  mkdirSync(outDir, { recursive: true });
  const release = acquireLockUntilExit(join(outDir, FILES.lock), { onTakeover });
  try {
    return await work();
  } finally {
    release();
  }
}

function newParseStats(stage: StageName, replies: number): ParseStats {
  return { stage, replies, records: 0, turns: 0, rejectedBlocks: 0, rejectedRecords: 0, reasons: new Map() };
}

function countReject(stats: ParseStats, reason: string, kind: 'block' | 'record'): void {
  if (kind === 'block') stats.rejectedBlocks++;
  else stats.rejectedRecords++;
  stats.reasons.set(reason, (stats.reasons.get(reason) ?? 0) + 1);
}

// ---------------------------------------------------------------------------------------------
// Stage 1: scenes

export type SceneItem = WorkItem & { index: number; paragraph: number };

/**
 * The scene requests, as the original builds them: one prompt per paragraph,
 * the list repeated `max(floor(count / n), 1)` times, then topped up to `count` with
 * `random.seed(seed); random.choices(prompts, weights=[len(p) for p in prompts])`.
 * A profile with more paragraphs than `count` keeps all of them (the original's Martin has 115).
 */
export function buildSceneItems(profile: Profile, template: string, count: number, seed: number): SceneItem[] {
  const prompts = profile.paragraphs.map((paragraph) => fillTemplate(template, { agent_summary: paragraph, agent_name: profile.fullName }, 'scene template'));
  const picks: number[] = [];
  const repeats = Math.max(Math.floor(count / prompts.length), 1);
  for (let r = 0; r < repeats; r++) for (let p = 0; p < prompts.length; p++) picks.push(p);
  if (picks.length < count) {
    const rng = MersenneTwister.fromPythonSeed(seed);
    // Python's len() counts code points; spread the string so astral characters count once.
    const weights = prompts.map((prompt) => [...prompt].length);
    picks.push(...pythonChoicesIndices(rng, weights, count - picks.length));
  }
  return picks.map((paragraph, index) => ({ id: `scene_${index}`, index, paragraph, prompt: prompts[paragraph]! }));
}

export async function runScenesStage(ctx: RunContext, profile: Profile, count: number, seed: number): Promise<StageReport> {
  const items = buildSceneItems(profile, ctx.templates.scene, count, seed);
  const { summary, results } = await runStage(stageOptions(ctx, 'scenes', items));
  const parse = newParseStats('scenes', results.size);
  const scenes: SceneRecord[] = [];
  const rejects: RejectRecord[] = [];
  for (const item of items) {
    const record = results.get(item.id);
    if (!record) continue;
    const parsed = parseScenes(record.completion);
    if (record.finish_reason === 'length' && parsed.scenes.length > 0) {
      // A reply cut at --max-tokens: its last scene may be cut mid-sentence.
      const cut = parsed.scenes.pop()!;
      parsed.rejects.push({ text: `Type: ${cut.type}\nLocation: ${cut.location}\nBackground: ${cut.background}`, reason: 'last scene cut off at the token limit' });
    }
    parsed.scenes.forEach((scene, k) => {
      scenes.push({ source: `${item.id}_c${k + 1}`, ...scene, paragraph: item.paragraph, profile: profile.paragraphs[item.paragraph]! });
    });
    for (const reject of parsed.rejects) {
      rejects.push({ source: item.id, reason: reject.reason, text: reject.text });
      countReject(parse, reject.reason, 'block');
    }
  }
  parse.records = scenes.length;
  writeJsonl(join(ctx.outDir, FILES.output('scenes')), scenes);
  writeJsonl(join(ctx.outDir, FILES.rejects('scenes')), rejects);
  return { summary, parse };
}

// ---------------------------------------------------------------------------------------------
// Stage 2: dialogues (experience completion)

export function buildDialogueItems(profile: Profile, template: string, scenes: SceneRecord[]): (WorkItem & { scene: SceneRecord })[] {
  return scenes.map((scene) => ({
    id: `dialogue_${scene.source}`,
    scene,
    prompt: fillTemplate(
      template,
      { agent_summary: scene.profile, type: scene.type, location: scene.location, background: scene.background, agent_name: profile.fullName, agent_short_name: profile.shortName },
      'dialogue template',
    ),
  }));
}

/** Parses one reply into an experience, or says why the whole reply is unusable. */
function parseExperience(record: OkRecord, profile: Profile, minTurns: number): { setting: string[]; turns: Turn[]; rejects: Reject[]; recordReject?: string } {
  const parsed = parseDialogue(record.completion, { shortName: profile.shortName, fullName: profile.fullName, truncated: record.finish_reason === 'length' });
  if (parsed.turns.length === 0) return { ...parsed, recordReject: 'no turns' };
  if (parsed.turns.length < minTurns) return { ...parsed, recordReject: `fewer than ${minTurns} turns` };
  return parsed;
}

/**
 * Parses every successful reply of an experience stage (dialogues, protective) in item order:
 * rejected blocks and records go to `rejects` and the stats, each kept experience to `keep`.
 */
function collectExperiences<I extends WorkItem>(
  items: readonly I[],
  results: Map<string, OkRecord>,
  profile: Profile,
  minTurns: number,
  parse: ParseStats,
  rejects: RejectRecord[],
  keep: (item: I, experience: { setting: string[]; turns: Turn[] }) => void,
): void {
  for (const item of items) {
    const record = results.get(item.id);
    if (!record) continue;
    const experience = parseExperience(record, profile, minTurns);
    for (const reject of experience.rejects) {
      rejects.push({ source: item.id, reason: reject.reason, text: reject.text });
      countReject(parse, reject.reason, 'block');
    }
    if (experience.recordReject) {
      rejects.push({ source: item.id, reason: experience.recordReject, text: record.completion });
      countReject(parse, experience.recordReject, 'record');
      continue;
    }
    keep(item, experience);
    parse.turns += experience.turns.length;
  }
}

export async function runDialoguesStage(ctx: RunContext, profile: Profile): Promise<StageReport> {
  const scenesPath = join(ctx.outDir, FILES.output('scenes'));
  if (!existsSync(scenesPath)) throw new UserError(`${scenesPath}: not found; run \`wgpu-char data scenes\` first`);
  const items = buildDialogueItems(profile, ctx.templates.dialogue, readJsonl<SceneRecord>(scenesPath));
  const { summary, results } = await runStage(stageOptions(ctx, 'dialogues', items));
  const parse = newParseStats('dialogues', results.size);
  parse.noBackground = 0;
  const dialogues: DialogueRecord[] = [];
  const rejects: RejectRecord[] = [];
  collectExperiences(items, results, profile, ctx.minTurns ?? 3, parse, rejects, (item, experience) => {
    if (experience.setting.length === 0) parse.noBackground = (parse.noBackground ?? 0) + 1;
    const { scene } = item;
    dialogues.push({ source: item.id, scene: scene.source, type: scene.type, location: scene.location, status: scene.background, setting: experience.setting, dialogue: experience.turns });
  });
  parse.records = dialogues.length;
  writeJsonl(join(ctx.outDir, FILES.output('dialogues')), dialogues);
  writeJsonl(join(ctx.outDir, FILES.rejects('dialogues')), rejects);
  return { summary, parse };
}

// ---------------------------------------------------------------------------------------------
// Stage 3: protective scenes (one per paragraph, no repeats, as in the original)

export function buildProtectiveItems(profile: Profile, template: string): (WorkItem & { paragraph: number })[] {
  return profile.paragraphs.map((paragraph, index) => ({
    id: `protective_${index}`,
    paragraph: index,
    prompt: fillTemplate(template, { agent_summary: paragraph, agent_name: profile.fullName, agent_short_name: profile.shortName }, 'protective template'),
  }));
}

export async function runProtectiveStage(ctx: RunContext, profile: Profile): Promise<StageReport> {
  const items = buildProtectiveItems(profile, ctx.templates.protective);
  const { summary, results } = await runStage(stageOptions(ctx, 'protective', items));
  const parse = newParseStats('protective', results.size);
  const records: ProtectiveRecord[] = [];
  const rejects: RejectRecord[] = [];
  collectExperiences(items, results, profile, ctx.minTurns ?? 3, parse, rejects, (item, experience) => {
    records.push({ source: item.id, paragraph: item.paragraph, setting: experience.setting, dialogue: experience.turns });
  });
  parse.records = records.length;
  writeJsonl(join(ctx.outDir, FILES.output('protective')), records);
  writeJsonl(join(ctx.outDir, FILES.rejects('protective')), rejects);
  return { summary, parse };
}

function stageOptions(ctx: RunContext, stage: StageName, items: WorkItem[]) {
  return {
    stage,
    items,
    logPath: join(ctx.outDir, FILES.log(stage)),
    client: new CompletionClient(ctx.settings, ctx.retry),
    concurrency: ctx.concurrency,
    progressStream: ctx.progressStream,
    progressIntervalMs: ctx.progressIntervalMs,
  };
}

// ---------------------------------------------------------------------------------------------
// Stage 4: convert to the prompted SFT file

export type LengthStats = { samples: number; min: number; median: number; p95: number; max: number; overLimit: number; limit: number };
export type ConvertReport = {
  path: string;
  dialogueSamples: number;
  protectiveSamples: number;
  turns: number;
  words: number;
  /** Token lengths of BOS + prompt + output, when a tokenizer was given and could be loaded. */
  tokens?: LengthStats;
  tokenizerNote?: string;
};

/** Dialogue experiences -> samples with the scene's location and the model's first background paragraph as status. */
export function dialogueSample(record: DialogueRecord, profile: Profile): PromptedSample {
  return {
    prompt: fillMetaPrompt({ character: profile.fullName, loc_time: record.location, status: record.setting[0] ?? record.status }),
    output: serializeTurns(record.dialogue, { protective: false }),
    source: record.source,
  };
}

export function protectiveSample(record: ProtectiveRecord, profile: Profile): PromptedSample {
  return {
    prompt: fillMetaPrompt({ character: profile.fullName, loc_time: PROTECTIVE_LOC_TIME, status: protectiveStatus(profile.shortName) }),
    output: serializeTurns(record.dialogue, { protective: true }),
    source: record.source,
  };
}

/** The part of src/data/tokenizer.ts used here; `bos: true` prepends BOS as the trainer does. */
type TokenizerLike = { encode(text: string, opts?: { bos?: boolean }): ArrayLike<number> };

/**
 * The tokenizer module is another engineer's (src/data/tokenizer.ts); it is imported lazily so
 * that data generation works without it, and a missing module only skips the statistics.
 */
async function loadTokenizer(path: string): Promise<{ tokenizer?: TokenizerLike; note?: string }> {
  const modulePath = new URL('../tokenizer.ts', import.meta.url).href;
  let module: { Tokenizer?: { load(path: string): TokenizerLike | Promise<TokenizerLike> } };
  try {
    module = (await import(modulePath)) as typeof module;
  } catch (error) {
    return { note: `token statistics skipped: tokenizer module not available (${(error as Error).message.split('\n')[0]})` };
  }
  if (typeof module.Tokenizer?.load !== 'function') return { note: 'token statistics skipped: src/data/tokenizer.ts has no Tokenizer.load' };
  if (!existsSync(path)) throw new UserError(`${path}: tokenizer file not found`);
  return { tokenizer: await module.Tokenizer.load(path) };
}

function lengthStats(lengths: number[], limit: number): LengthStats {
  const sorted = [...lengths].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { samples: sorted.length, min: sorted[0] ?? 0, median: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1] ?? 0, overLimit: sorted.filter((n) => n > limit).length, limit };
}

export async function runConvertStage(outDir: string, profile: Profile, opts: { tokenizerPath?: string; maxLength?: number } = {}): Promise<ConvertReport> {
  const dialoguesPath = join(outDir, FILES.output('dialogues'));
  const protectivePath = join(outDir, FILES.output('protective'));
  if (!existsSync(dialoguesPath) && !existsSync(protectivePath)) throw new UserError(`${outDir}: neither ${FILES.output('dialogues')} nor ${FILES.output('protective')} exists; run the dialogues/protective stages first`);
  const dialogues = existsSync(dialoguesPath) ? readJsonl<DialogueRecord>(dialoguesPath) : [];
  const protective = existsSync(protectivePath) ? readJsonl<ProtectiveRecord>(protectivePath) : [];
  // Dialogue samples first, then protective ones, as the original converter writes them.
  const samples = [...dialogues.map((r) => dialogueSample(r, profile)), ...protective.map((r) => protectiveSample(r, profile))];
  const path = join(outDir, FILES.prompted(profile.shortName));
  writeJsonl(path, samples);

  const allTurns = [...dialogues, ...protective].flatMap((r) => r.dialogue);
  const report: ConvertReport = {
    path,
    dialogueSamples: dialogues.length,
    protectiveSamples: protective.length,
    turns: allTurns.length,
    words: allTurns.reduce((sum, t) => sum + countWords(t.content), 0),
  };
  if (opts.tokenizerPath !== undefined) {
    const { tokenizer, note } = await loadTokenizer(opts.tokenizerPath);
    report.tokenizerNote = note;
    if (tokenizer) report.tokens = lengthStats(samples.map((s) => tokenizer.encode(s.prompt + s.output, { bos: true }).length), opts.maxLength ?? 2048);
  }
  writeFileAtomic(join(outDir, FILES.stats), JSON.stringify({ ...report, path: FILES.prompted(profile.shortName) }, null, 2) + '\n');
  return report;
}

