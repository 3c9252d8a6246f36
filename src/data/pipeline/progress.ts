/**
 * A progress line per stage on stderr: `dialogues  37/120  31%  2.4/s  ETA 0:35  failed 1`.
 * On a TTY one line is redrawn in place; otherwise (CI, logs, tests) a plain line is printed at
 * most every `intervalMs` and once at the end, so logs stay readable.
 */

export type ProgressStream = { write(text: string): unknown; isTTY?: boolean };

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

export class Progress {
  private done = 0;
  private failed = 0;
  private readonly startedAt = Date.now();
  private lastDrawAt: number;
  private lastWidth = 0;

  constructor(
    private readonly label: string,
    /** Items this run will attempt (already-done items are not counted). */
    private readonly total: number,
    private readonly stream: ProgressStream = process.stderr,
    private readonly intervalMs = 10_000,
    /** Items finished in earlier runs, shown for context. */
    private readonly skipped = 0,
  ) {
    // A terminal shows the bar at once; a log gets its first line after one interval.
    this.lastDrawAt = stream.isTTY ? 0 : this.startedAt;
  }

  tick(outcome: 'done' | 'failed'): void {
    if (outcome === 'done') this.done++;
    else this.failed++;
    this.draw(false);
  }

  finish(): void {
    this.draw(true);
  }

  line(): string {
    const finished = this.done + this.failed;
    const seconds = (Date.now() - this.startedAt) / 1000;
    const rate = seconds > 0 ? finished / seconds : 0;
    const eta = rate > 0 ? (this.total - finished) / rate : Infinity;
    const percent = this.total > 0 ? Math.floor((100 * finished) / this.total) : 100;
    const parts = [`${this.label.padEnd(10)} ${finished}/${this.total}`, `${percent}%`, `${rate.toFixed(1)}/s`, finished >= this.total ? `in ${formatDuration(seconds)}` : `ETA ${formatDuration(eta)}`];
    if (this.failed > 0) parts.push(`failed ${this.failed}`);
    if (this.skipped > 0) parts.push(`(${this.skipped} done earlier)`);
    return parts.join('  ');
  }

  private draw(final: boolean): void {
    const now = Date.now();
    if (this.stream.isTTY) {
      if (!final && now - this.lastDrawAt < 100) return;
      const text = this.line();
      this.stream.write(`\r${text.padEnd(this.lastWidth)}${final ? '\n' : ''}`);
      this.lastWidth = text.length;
    } else {
      if (!final && now - this.lastDrawAt < this.intervalMs) return;
      this.stream.write(this.line() + '\n');
    }
    this.lastDrawAt = now;
  }
}
