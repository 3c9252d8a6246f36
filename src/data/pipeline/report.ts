import type { StageSummary } from './runner.ts';
import type { ConvertReport, ParseStats, StageReport } from './stages.ts';

/**
 * The end-of-run summary: per stage done / failed / skipped, tokens used, retries and failure
 * reasons; per parse the records kept and what was rejected (see <stage>.rejects.jsonl).
 */

function plural(n: number, word: string): string {
  if (n === 1) return `${n} ${word}`;
  return `${n} ${word.endsWith('y') ? word.slice(0, -1) + 'ies' : word + 's'}`;
}

function topReasons(reasons: Map<string, number>, limit = 6): string {
  const sorted = [...reasons.entries()].sort((a, b) => b[1] - a[1]);
  const shown = sorted.slice(0, limit).map(([reason, n]) => `${n}× ${reason}`);
  if (sorted.length > limit) shown.push(`… ${sorted.length - limit} more`);
  return shown.join('; ');
}

export function formatStageSummary(s: StageSummary): string[] {
  const lines = [
    `${s.stage}: ${s.done} done, ${s.failed} failed, ${s.skipped} skipped (done earlier) of ${s.total}; tokens: ${s.usage.prompt_tokens} prompt, ${s.usage.completion_tokens} completion`,
  ];
  if (s.retries.size > 0) lines.push(`  retried attempts: ${topReasons(s.retries)}`);
  if (s.failures.length > 0) {
    const byReason = new Map<string, string[]>();
    for (const f of s.failures) byReason.set(f.reason, [...(byReason.get(f.reason) ?? []), f.id]);
    for (const [reason, ids] of byReason) lines.push(`  failed: ${reason}: ${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ` (+${ids.length - 5} more)` : ''}`);
  }
  if (s.unreadableLogLines > 0) lines.push(`  warning: ${plural(s.unreadableLogLines, 'unreadable log line')} ignored`);
  return lines;
}

export function formatParseStats(p: ParseStats): string[] {
  const kept = p.stage === 'scenes' ? plural(p.records, 'scene') : `${plural(p.records, 'experience')} (${plural(p.turns, 'turn')})`;
  const lines = [`  parsed ${plural(p.replies, 'reply')} -> ${kept}; rejected ${plural(p.rejectedBlocks, 'block')}${p.stage === 'scenes' ? '' : `, ${plural(p.rejectedRecords, 'reply')}`}`];
  if (p.reasons.size > 0) lines.push(`  rejects (${p.stage}.rejects.jsonl): ${topReasons(p.reasons)}`);
  if (p.noBackground) lines.push(`  ${plural(p.noBackground, 'experience')} had no Background paragraph: the scene's background is used as status`);
  return lines;
}

export function formatStageReport(r: StageReport): string[] {
  return [...formatStageSummary(r.summary), ...formatParseStats(r.parse)];
}

export function formatConvertReport(r: ConvertReport): string[] {
  const samples = r.dialogueSamples + r.protectiveSamples;
  const lines = [
    `convert: ${r.path}: ${plural(samples, 'sample')} (${r.dialogueSamples} experiences + ${r.protectiveSamples} protective), ${plural(r.turns, 'turn')}, ${r.words} words` +
      (samples > 0 ? `, ${(r.turns / samples).toFixed(1)} turns and ${r.turns > 0 ? (r.words / r.turns).toFixed(1) : '0'} words per turn on average` : ''),
  ];
  if (r.tokens) {
    const t = r.tokens;
    lines.push(`  tokens per sample (with BOS): min ${t.min}, median ${t.median}, p95 ${t.p95}, max ${t.max}; ${t.overLimit} over ${t.limit} (truncated in training)`);
  }
  if (r.tokenizerNote) lines.push(`  ${r.tokenizerNote}`);
  return lines;
}
