/**
 * GET /metrics: a batching generator's counters (src/gen/continuous.ts `BatcherMetrics`) in
 * Prometheus' text format (version 0.0.4). A "request" here is one generation, i.e. one choice of a
 * response (a completion of 2 prompts with n = 3 is 6):
 * - wgpu_char_requests_running, wgpu_char_requests_queued (gauges): holding a slot; waiting for one.
 * - wgpu_char_requests_submitted_total: taken into a slot or the queue.
 * - wgpu_char_requests_total{status}: ended, by how: stop, length, cancelled (the client left),
 *   aborted (the shutdown cut it), rejected (the queue was full: a 429), error.
 * - wgpu_char_generated_tokens_total, wgpu_char_prompt_tokens_total: tokens sampled; prompt tokens
 *   prefilled (each choice's prompt counted, unlike a response's usage).
 * - wgpu_char_time_to_first_token_seconds (histogram): from the generation's start (its queueing
 *   included) to its first sampled token.
 */
import { GENERATION_OUTCOMES, type BatcherMetrics } from '../gen/continuous.ts';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function prometheusText(m: BatcherMetrics): string {
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter' | 'histogram', help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [suffix, value] of samples) lines.push(`${name}${suffix} ${value}`);
  };
  metric('wgpu_char_requests_running', 'gauge', 'Generations holding a slot (prefilling or decoding).', [['', m.running]]);
  metric('wgpu_char_requests_queued', 'gauge', 'Generations waiting for a slot.', [['', m.queued]]);
  metric('wgpu_char_requests_submitted_total', 'counter', 'Generations taken into a slot or the queue.', [['', m.submitted]]);
  metric(
    'wgpu_char_requests_total',
    'counter',
    'Generations ended, by status: stop, length, cancelled (client gone), aborted (shutdown), rejected (queue full), error.',
    GENERATION_OUTCOMES.map((o) => [`{status="${o}"}`, m.ended[o]]),
  );
  metric('wgpu_char_generated_tokens_total', 'counter', 'Tokens sampled.', [['', m.generatedTokens]]);
  metric('wgpu_char_prompt_tokens_total', 'counter', 'Prompt tokens of the generations submitted (BOS included, after any cut).', [['', m.promptTokens]]);
  const h = m.timeToFirstToken;
  metric('wgpu_char_time_to_first_token_seconds', 'histogram', 'Seconds from a generation\'s start (queueing included) to its first token.', [
    ...h.buckets.map((b): [string, number] => [`_bucket{le="${b.le}"}`, b.count]),
    ['_bucket{le="+Inf"}', h.count],
    ['_sum', h.sum],
    ['_count', h.count],
  ]);
  return lines.join('\n') + '\n';
}
