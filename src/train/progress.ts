/**
 * The live progress line of `wgpu-char train` on stderr:
 *   step 37/240  epoch 1.54  loss 2.3141  lr 1.98e-5  1234 tok/s  elapsed 1m02s  ETA 5m40s
 * On a TTY it is rewritten in place with `\r` (a message clears it, takes its own line, and the
 * live line is redrawn below); otherwise a plain line is written every `every` steps (and at the
 * session's first step and the run's last), so logs of a non-interactive run stay readable.
 */

export interface ProgressStream { write(s: string): unknown; isTTY?: boolean }

export interface ProgressInfo {
  step: number;
  total: number;
  epoch: number;
  loss: number;
  lr: number;
  tokensPerS: number;
  elapsedS: number;
  /** null while unknown (no step timed yet in this session). */
  etaS: number | null;
}

/** 75 → "1m15s", 3725 → "1h02m", 9.4 → "9s". */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatProgress(p: ProgressInfo): string {
  const w = String(p.total).length;
  return `step ${String(p.step).padStart(w)}/${p.total}  epoch ${p.epoch.toFixed(2)}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(2)}  ` +
    `${Math.round(p.tokensPerS)} tok/s  elapsed ${formatDuration(p.elapsedS)}  ETA ${p.etaS === null ? '?' : formatDuration(p.etaS)}`;
}

export class Progress {
  private lastLine: string | null = null;
  private updates = 0;
  constructor(private readonly out: ProgressStream, private readonly every = 10) {}

  update(p: ProgressInfo): void {
    const line = formatProgress(p);
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[2K${line}`);
      this.lastLine = line;
    } else if (this.updates === 0 || p.step === p.total || p.step % Math.max(1, this.every) === 0) {
      this.out.write(`${line}\n`);
    }
    this.updates++;
  }

  /** A line of its own (eval result, checkpoint saved, ...): on a TTY the live line is redrawn below it. */
  message(text: string): void {
    if (this.lastLine !== null) {
      this.out.write(`\r\x1b[2K${text}\n${this.lastLine}`);
    } else {
      this.out.write(`${text}\n`);
    }
  }

  /** Ends the live line (keeping its last state on screen) before the summary or an error. */
  finish(): void {
    if (this.lastLine !== null) this.out.write('\n');
    this.lastLine = null;
  }
}
