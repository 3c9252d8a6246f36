/**
 * `wgpu-char score`: every interview of every results file judged on each dimension, then the
 * aggregation the original lacks: per results file and dimension the mean score with a seeded
 * bootstrap 95% interval over questions, N (parsed scores) and the unparsed count; the same per
 * model and per character across files (the mean of the per-file means, resampled within each
 * file). Writes OUT/scores.json, OUT/scores.md and one bar chart per protocol,
 * OUT/scores-single.svg and OUT/scores-turns.svg.
 *
 * The judge requests go through the data pipeline's runner: OUT/judge.log.jsonl holds every
 * reply, fsynced, and a re-run sends only the requests it lacks.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CompletionClient, type GenerationSettings, type RetryPolicy } from '../data/pipeline/client.ts';
import type { ProgressStream } from '../data/pipeline/progress.ts';
import { runStage, type StageSummary, type WorkItem } from '../data/pipeline/runner.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { acquireLockUntilExit } from '../util/lock.ts';
import { judgePrompt, loadJudgePrompts, parseScore, profileLead, readJudgeItems, SINGLE_TURN_DIMENSIONS, type Dimension, type ResultsFile } from './judge.ts';
import { bootstrapMeanOfMeans } from './stats.ts';
import { barChartSvg } from './chart.ts';

export type ScoreOptions = {
  files: ResultsFile[];
  dimensions: Dimension[];
  outDir: string;
  /** Folder of the judge prompts (default: the original's, shipped). */
  promptsDir?: string;
  /** Folder of wiki_<Short>.txt profiles for characters beyond the paper's nine. */
  profilesDir?: string;
  settings: Omit<GenerationSettings, 'endpoint' | 'stop'>;
  retry: RetryPolicy;
  concurrency: number;
  resamples: number;
  seed: number;
  progressStream?: ProgressStream;
  progressIntervalMs?: number;
};

export type ScoreRow = {
  file: string;
  protocol: 'single' | 'turns';
  model: string;
  character: string;
  dimension: Dimension;
  mean: number | null;
  ci95: [number, number] | null;
  /** Parsed scores. */
  n: number;
  /** Judge replies without a score line. */
  unparsed: number;
  /** Interviews with no judge reply yet (their request failed; a re-run retries it). */
  missing: number;
};
export type GroupRow = Omit<ScoreRow, 'file' | 'model' | 'character'> & { model?: string; character?: string; files: number };

export type ScoresJson = {
  judge: { model: string; base_url: string };
  score_rule: string;
  bootstrap: { resamples: number; seed: number; unit: string };
  results: ScoreRow[];
  by_model: GroupRow[];
  by_character: GroupRow[];
};

export const SCORE_RULE = 'the last line of the judge reply that is, trimmed, one integer 1-7; replies without one are unparsed';

export type ScoreReport = { summary: StageSummary; scores: ScoresJson; paths: { json: string; markdown: string; charts: string[] } };

export async function runScore(opts: ScoreOptions): Promise<ScoreReport> {
  mkdirSync(opts.outDir, { recursive: true });
  const release = acquireLockUntilExit(join(opts.outDir, '.score.lock'), {
    onTakeover: (pid) => opts.progressStream?.write(`wgpu-char: ${opts.outDir}: taking over the lock of pid ${pid}, which is no longer running\n`),
  });
  try {
    const templates = loadJudgePrompts(opts.dimensions, opts.promptsDir);
    type Cell = { file: ResultsFile; label: string; dimension: Dimension; ids: string[] };
    const cells: Cell[] = [];
    const items: WorkItem[] = [];
    const labels = fileLabels(opts.files);
    for (const file of opts.files) {
      const judged = readJudgeItems(file);
      const profile = profileLead(file.character, opts.profilesDir);
      const label = labels.get(file.path)!;
      for (const dimension of opts.dimensions) {
        if (file.protocol === 'single' && !SINGLE_TURN_DIMENSIONS.includes(dimension)) continue;
        const cell: Cell = { file, label, dimension, ids: [] };
        for (const item of judged) {
          const id = `${dimension}:${label}:${item.index}`;
          cell.ids.push(id);
          items.push({ id, prompt: judgePrompt(templates.get(dimension)!, file.character, profile, item.interactions) });
        }
        cells.push(cell);
      }
    }
    const { summary, results } = await runStage({
      stage: 'judge',
      items,
      logPath: join(opts.outDir, 'judge.log.jsonl'),
      client: new CompletionClient({ ...opts.settings, endpoint: 'chat' }, opts.retry),
      concurrency: opts.concurrency,
      progressStream: opts.progressStream,
      progressIntervalMs: opts.progressIntervalMs,
    });

    const scoresOf = (cell: Cell) => {
      const parsed: number[] = [];
      let unparsed = 0;
      let missing = 0;
      for (const id of cell.ids) {
        const ok = results.get(id);
        if (!ok) missing++;
        else {
          const s = parseScore(ok.completion);
          if (s === undefined) unparsed++;
          else parsed.push(s);
        }
      }
      return { parsed, unparsed, missing };
    };
    const perCell = cells.map((cell) => ({ cell, ...scoresOf(cell) }));
    const rows: ScoreRow[] = perCell.map(({ cell, parsed, unparsed, missing }) => {
      const est = bootstrapMeanOfMeans([parsed], opts.resamples, opts.seed);
      return {
        file: cell.label,
        protocol: cell.file.protocol,
        model: cell.file.model,
        character: cell.file.character,
        dimension: cell.dimension,
        mean: est?.mean ?? null,
        ci95: est?.ci95 ?? null,
        n: parsed.length,
        unparsed,
        missing,
      };
    });
    const group = (key: 'model' | 'character'): GroupRow[] => {
      const groups = new Map<string, typeof perCell>();
      for (const pc of perCell) {
        const k = JSON.stringify([pc.cell.file.protocol, pc.cell.file[key], pc.cell.dimension]);
        groups.set(k, [...(groups.get(k) ?? []), pc]);
      }
      return [...groups.values()].map((members) => {
        const first = members[0]!.cell;
        const est = bootstrapMeanOfMeans(members.map((m) => m.parsed), opts.resamples, opts.seed);
        return {
          protocol: first.file.protocol,
          [key]: first.file[key],
          dimension: first.dimension,
          mean: est?.mean ?? null,
          ci95: est?.ci95 ?? null,
          n: members.reduce((n, m) => n + m.parsed.length, 0),
          unparsed: members.reduce((n, m) => n + m.unparsed, 0),
          missing: members.reduce((n, m) => n + m.missing, 0),
          files: members.length,
        } as GroupRow;
      });
    };
    const scores: ScoresJson = {
      judge: { model: opts.settings.model, base_url: opts.settings.baseURL },
      score_rule: SCORE_RULE,
      bootstrap: { resamples: opts.resamples, seed: opts.seed, unit: 'question (single-turn) or interview (multi-turn); for groups of files, the mean of the file means, resampled within each file' },
      results: rows,
      by_model: group('model'),
      by_character: group('character'),
    };
    const paths = { json: join(opts.outDir, 'scores.json'), markdown: join(opts.outDir, 'scores.md'), charts: [] as string[] };
    writeFileAtomic(paths.json, JSON.stringify(scores, null, 2) + '\n');
    writeFileAtomic(paths.markdown, scoresMarkdown(scores, opts.dimensions));
    for (const protocol of ['single', 'turns'] as const) {
      const byModel = scores.by_model.filter((r) => r.protocol === protocol);
      if (byModel.length === 0) continue;
      const dims = opts.dimensions.filter((d) => byModel.some((r) => r.dimension === d));
      const models = [...new Set(byModel.map((r) => r.model!))];
      const svg = barChartSvg({
        title: `${protocol === 'single' ? 'Single-turn' : 'Multi-turn'} interviews: judge scores (1-7), mean and 95% CI`,
        groups: dims,
        series: models,
        value: (d, m) => {
          const r = byModel.find((x) => x.dimension === d && x.model === m);
          return r && r.mean !== null ? { mean: r.mean, lo: r.ci95![0], hi: r.ci95![1] } : undefined;
        },
        yMin: 1,
        yMax: 7,
      });
      const path = join(opts.outDir, `scores-${protocol}.svg`);
      writeFileAtomic(path, svg);
      paths.charts.push(path);
    }
    return { summary, scores, paths };
  } finally {
    release();
  }
}

/** Short unique names of the files: their path from the folders' common parent (`Beethoven_sft_result/x.json`). */
function fileLabels(files: readonly ResultsFile[]): Map<string, string> {
  const parts = files.map((f) => f.path.split('/'));
  let common = 0;
  if (files.length > 0) {
    const first = parts[0]!;
    while (common < first.length - 2 && parts.every((p) => p[common] === first[common] && common < p.length - 2)) common++;
  }
  const labels = new Map<string, string>();
  files.forEach((f, i) => {
    const label = parts[i]!.slice(common).join('/');
    if ([...labels.values()].includes(label)) throw new Error(`two results files labelled ${label}`);
    labels.set(f.path, label);
  });
  return labels;
}

function cellText(r: { mean: number | null; ci95: [number, number] | null; n: number; unparsed: number; missing: number }): string {
  if (r.mean === null) return `– (n 0${r.unparsed ? `, unparsed ${r.unparsed}` : ''}${r.missing ? `, missing ${r.missing}` : ''})`;
  const extra = [`n ${r.n}`, ...(r.unparsed ? [`unparsed ${r.unparsed}`] : []), ...(r.missing ? [`missing ${r.missing}`] : [])].join(', ');
  return `${r.mean.toFixed(2)} [${r.ci95![0].toFixed(2)}, ${r.ci95![1].toFixed(2)}] (${extra})`;
}

export function scoresMarkdown(scores: ScoresJson, dimensions: readonly Dimension[]): string {
  const out: string[] = [];
  const table = (title: string, keyName: string, rows: { key: string; dimension: Dimension; r: Parameters<typeof cellText>[0] }[]) => {
    const dims = dimensions.filter((d) => rows.some((r) => r.dimension === d));
    const keys = [...new Set(rows.map((r) => r.key))];
    out.push(`## ${title}`, '', `| ${keyName} | ${dims.join(' | ')} |`, `|---|${dims.map(() => '---').join('|')}|`);
    for (const k of keys) out.push(`| ${k} | ${dims.map((d) => { const row = rows.find((r) => r.key === k && r.dimension === d); return row ? cellText(row.r) : ''; }).join(' | ')} |`);
    out.push('');
  };
  out.push(`# Judge scores (${scores.judge.model})`, '', `Mean score 1-7 [bootstrap 95% CI, ${scores.bootstrap.resamples} resamples, seed ${scores.bootstrap.seed}] (n parsed scores). Score rule: ${scores.score_rule}.`, '');
  for (const protocol of ['single', 'turns'] as const) {
    const name = protocol === 'single' ? 'Single-turn' : 'Multi-turn';
    const byModel = scores.by_model.filter((r) => r.protocol === protocol);
    if (byModel.length === 0) continue;
    table(`${name}, per model (mean of the characters' means)`, 'model', byModel.map((r) => ({ key: r.model!, dimension: r.dimension, r })));
    table(`${name}, per character (mean of the models' means)`, 'character', scores.by_character.filter((r) => r.protocol === protocol).map((r) => ({ key: r.character!, dimension: r.dimension, r })));
    table(`${name}, per results file`, 'file', scores.results.filter((r) => r.protocol === protocol).map((r) => ({ key: r.file, dimension: r.dimension, r })));
  }
  return out.join('\n');
}
