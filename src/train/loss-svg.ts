/**
 * OUT/loss.svg: train loss (every step) and eval loss (every evaluation) against the optimizer
 * step, as a small self-contained SVG (no dependencies, no scripts, no external fonts): title,
 * axes with "nice" ticks (1/2/5 × 10^k), a light grid, one polyline per series (eval points also
 * marked), and a legend. Non-finite losses are left out of the curves.
 */

export interface LossSeries { train: [step: number, loss: number][]; eval: [step: number, loss: number][] }

const W = 720, H = 420;
const M = { left: 64, right: 20, top: 40, bottom: 48 };
const TRAIN_COLOR = '#1f77b4', EVAL_COLOR = '#d62728';

/** Up to about `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function renderLossSvg(series: LossSeries, title = 'loss'): string {
  const ok = (p: [number, number]) => Number.isFinite(p[0]) && Number.isFinite(p[1]);
  const train = series.train.filter(ok), evalPts = series.eval.filter(ok);
  const all = [...train, ...evalPts];
  let x0 = Math.min(0, ...all.map((p) => p[0])), x1 = Math.max(1, ...all.map((p) => p[0]));
  let y0 = all.length ? Math.min(...all.map((p) => p[1])) : 0, y1 = all.length ? Math.max(...all.map((p) => p[1])) : 1;
  if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.05;
  y0 -= pad; y1 += pad;
  const xt = niceTicks(x0, x1, 8).filter((v) => Number.isInteger(v)), yt = niceTicks(y0, y1, 6);
  // extend the ranges to the outer ticks so the grid frames the data
  x0 = Math.min(x0, xt[0] ?? x0); x1 = Math.max(x1, xt[xt.length - 1] ?? x1);
  const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => M.top + ph - ((y - y0) / (y1 - y0)) * ph;
  const c = (v: number) => v.toFixed(2);
  const points = (pts: [number, number][]) => pts.map(([x, y]) => `${c(sx(x))},${c(sy(y))}`).join(' ');

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  out.push(`<g stroke="#e6e6e6" stroke-width="1">`);
  for (const v of yt) if (v >= y0 && v <= y1) out.push(`<line x1="${M.left}" y1="${c(sy(v))}" x2="${W - M.right}" y2="${c(sy(v))}"/>`);
  for (const v of xt) out.push(`<line x1="${c(sx(v))}" y1="${M.top}" x2="${c(sx(v))}" y2="${M.top + ph}"/>`);
  out.push(`</g>`);
  out.push(`<g stroke="#000000" stroke-width="1"><line x1="${M.left}" y1="${M.top + ph}" x2="${W - M.right}" y2="${M.top + ph}"/>` +
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + ph}"/></g>`);
  out.push(`<g class="x-ticks" text-anchor="middle">`);
  for (const v of xt) out.push(`<line x1="${c(sx(v))}" y1="${M.top + ph}" x2="${c(sx(v))}" y2="${M.top + ph + 5}" stroke="#000000"/><text x="${c(sx(v))}" y="${M.top + ph + 18}">${fmt(v)}</text>`);
  out.push(`</g>`);
  out.push(`<g class="y-ticks" text-anchor="end">`);
  for (const v of yt) {
    if (v < y0 || v > y1) continue;
    out.push(`<line x1="${M.left - 5}" y1="${c(sy(v))}" x2="${M.left}" y2="${c(sy(v))}" stroke="#000000"/><text x="${M.left - 8}" y="${c(sy(v) + 4)}">${fmt(v)}</text>`);
  }
  out.push(`</g>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle">optimizer step</text>`);
  out.push(`<text x="16" y="${M.top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${M.top + ph / 2})">cross-entropy (nats/token)</text>`);
  if (train.length > 0) out.push(`<polyline class="train" fill="none" stroke="${TRAIN_COLOR}" stroke-width="1.5" points="${points(train)}"/>`);
  if (evalPts.length > 0) {
    out.push(`<polyline class="eval" fill="none" stroke="${EVAL_COLOR}" stroke-width="1.5" points="${points(evalPts)}"/>`);
    out.push(`<g class="eval-points" fill="${EVAL_COLOR}">${evalPts.map(([x, y]) => `<circle cx="${c(sx(x))}" cy="${c(sy(y))}" r="3"/>`).join('')}</g>`);
  }
  const lx = W - M.right - 150, ly = M.top + 10;
  out.push(`<g class="legend"><rect x="${lx}" y="${ly}" width="140" height="44" fill="#ffffff" stroke="#999999"/>` +
    `<line x1="${lx + 10}" y1="${ly + 15}" x2="${lx + 34}" y2="${ly + 15}" stroke="${TRAIN_COLOR}" stroke-width="2"/><text x="${lx + 40}" y="${ly + 19}">train loss</text>` +
    `<line x1="${lx + 10}" y1="${ly + 33}" x2="${lx + 34}" y2="${ly + 33}" stroke="${EVAL_COLOR}" stroke-width="2"/><circle cx="${lx + 22}" cy="${ly + 33}" r="3" fill="${EVAL_COLOR}"/><text x="${lx + 40}" y="${ly + 37}">eval loss</text></g>`);
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}
