// What `wgpu-char train` shows: OUT/loss.svg and the progress line.
import { describe, expect, it } from 'vitest';
import { escapeXml, niceTicks, renderLossSvg } from '../src/train/loss-svg.ts';
import { formatDuration, formatProgress, Progress, type ProgressInfo } from '../src/train/progress.ts';

/** Well-formedness, XML-ish: one root, every tag closed in order, attributes quoted, no stray `<` or `&`. */
function checkXml(s: string): string[] {
  const errors: string[] = [];
  const body = s.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  let roots = 0;
  const tagRe = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tagRe.exec(body); m; m = tagRe.exec(body)) {
    const text = body.slice(last, m.index);
    if (/[<>]/.test(text)) errors.push(`stray markup before offset ${m.index}: ${JSON.stringify(text.slice(0, 40))}`);
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(text)) errors.push(`unescaped & in ${JSON.stringify(text)}`);
    last = tagRe.lastIndex;
    const [, close, name, , selfClose] = m;
    if (close) {
      if (stack.pop() !== name) errors.push(`</${name}> does not close the open tag`);
    } else {
      if (stack.length === 0) roots++;
      if (!selfClose) stack.push(name);
    }
  }
  if (body.slice(last).trim() !== '') errors.push(`trailing text ${JSON.stringify(body.slice(last, last + 40))}`);
  if (stack.length) errors.push(`unclosed: ${stack.join(', ')}`);
  if (roots !== 1) errors.push(`${roots} root elements`);
  return errors;
}

describe('loss.svg', () => {
  const train: [number, number][] = Array.from({ length: 57 }, (_, i) => [i + 1, 3 * Math.exp(-i / 20) + 0.1 * Math.sin(i)]);
  const evalPts: [number, number][] = [[19, 2.1], [38, 1.6], [57, 1.4]];

  it('is well-formed SVG with title, axes, ticks, legend and both series', () => {
    const svg = renderLossSvg({ train, eval: evalPts }, 'beethoven <run> & co');
    expect(checkXml(svg)).toEqual([]);
    expect(svg).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('beethoven &lt;run&gt; &amp; co');
    const poly = (cls: string) => /<polyline class="(\w+)"[^>]*points="([^"]*)"/g;
    const series = new Map([...svg.matchAll(poly(''))].map((m) => [m[1], m[2].split(' ')]));
    expect(series.get('train')!.length).toBe(57);
    expect(series.get('eval')!.length).toBe(3);
    expect((svg.match(/<circle/g) ?? []).length).toBe(3 + 1); // eval points + the legend marker
    expect(svg).toContain('train loss');
    expect(svg).toContain('eval loss');
    expect(svg).toContain('optimizer step');
    expect(svg).toMatch(/class="x-ticks"[\s\S]*>50<\/text>/);
    // points lie inside the plot area, and lower loss is drawn higher up
    const pts = series.get('train')!.map((p) => p.split(',').map(Number));
    for (const [x, y] of pts) {
      expect(x).toBeGreaterThanOrEqual(64);
      expect(x).toBeLessThanOrEqual(700);
      expect(y).toBeGreaterThanOrEqual(40);
      expect(y).toBeLessThanOrEqual(372);
    }
    expect(pts[56][1]).toBeGreaterThan(pts[0][1]);
  });

  it('copes with no eval points, a single point, a flat curve and non-finite losses', () => {
    for (const s of [
      { train: [], eval: [] },
      { train: [[1, 2.5]] as [number, number][], eval: [] },
      { train: [[1, 2], [2, 2], [3, 2]] as [number, number][], eval: [[3, 2]] as [number, number][] },
      { train: [[1, 2], [2, NaN], [3, Infinity], [4, 1]] as [number, number][], eval: [] },
    ]) {
      const svg = renderLossSvg(s);
      expect(checkXml(svg)).toEqual([]);
      expect(svg).not.toMatch(/NaN|Infinity/);
    }
    expect(renderLossSvg({ train: [[1, 2], [2, NaN], [4, 1]], eval: [] })).toMatch(/class="train"[^>]*points="\S+ \S+"/);
  });

  it('niceTicks: round steps covering the range', () => {
    expect(niceTicks(0, 57, 8)).toEqual([0, 10, 20, 30, 40, 50]);
    expect(niceTicks(1.234, 3.1, 6)).toEqual([1.5, 2, 2.5, 3]);
    expect(niceTicks(0.9, 1.1, 5)).toEqual([0.9, 0.95, 1, 1.05, 1.1]);
    expect(niceTicks(2, 2)).toEqual([2]);
    expect(escapeXml('a<b>&"')).toBe('a&lt;b&gt;&amp;&quot;');
  });
});

describe('progress line', () => {
  const info = (step: number): ProgressInfo => ({ step, total: 240, epoch: step / 24, loss: 2.5, lr: 2e-5, tokensPerS: 1234.4, elapsedS: 62, etaS: 340 });

  it('formats step/total, loss, tokens/s and ETA', () => {
    expect(formatProgress(info(37))).toBe('step  37/240  epoch 1.54  loss 2.5000  lr 2.00e-5  1234 tok/s  elapsed 1m02s  ETA 5m40s');
    expect(formatProgress({ ...info(1), etaS: null })).toContain('ETA ?');
    expect([formatDuration(9.4), formatDuration(75), formatDuration(3725), formatDuration(NaN)]).toEqual(['9s', '1m15s', '1h02m', '?']);
  });

  it('rewrites one line with \\r on a TTY, keeping messages on their own lines', () => {
    let s = '';
    const p = new Progress({ write: (x: string) => (s += x), isTTY: true }, 10);
    p.update(info(1));
    p.update(info(2));
    p.message('eval step 2');
    p.update(info(3));
    p.finish();
    expect(s.split('\n')).toEqual([
      `\r\x1b[2K${formatProgress(info(1))}\r\x1b[2K${formatProgress(info(2))}\r\x1b[2Keval step 2`,
      `${formatProgress(info(2))}\r\x1b[2K${formatProgress(info(3))}`,
      '',
    ]);
  });

  it('prints a plain line every N steps (and the first and last) when not a TTY', () => {
    let s = '';
    const p = new Progress({ write: (x: string) => (s += x), isTTY: false }, 100);
    for (let i = 1; i <= 240; i++) p.update(info(i));
    p.message('done');
    p.finish();
    expect(s).not.toContain('\r');
    expect(s.trim().split('\n').map((l) => l.match(/^step\s+(\d+)/)?.[1] ?? l)).toEqual(['1', '100', '200', '240', 'done']);
    // a resumed session shows its first step too
    s = '';
    const q = new Progress({ write: (x: string) => (s += x), isTTY: false }, 100);
    for (let i = 137; i <= 240; i++) q.update(info(i));
    expect(s.trim().split('\n').map((l) => l.match(/^step\s+(\d+)/)?.[1])).toEqual(['137', '200', '240']);
  });
});
