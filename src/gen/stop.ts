/**
 * Stop conditions for character generation, applied to the decoded text as it streams.
 *
 * The model answers as the character: `Beethoven (speaking): ...<|eot|>`. Generation stops at the
 * first stop string (`<|eot|>`, or any user-given one) or when the model starts the next speaker's
 * tag on a new line (`\nMan (speaking):`), which a small model does instead of emitting <|eot|>.
 * The stop text itself is never returned (FastChat cuts the text before the stop string).
 *
 * Streaming: `push(text)` returns the part that is now certainly not the start of a stop
 * condition; text that might still become one is held back until it resolves.
 */
const TAG_RE = /\n[^\n():]{1,40} \((?:speaking|thinking|[a-z ]{1,20})\):/;
/** A line start that could still grow into a tag: "\nMan", "\nMan (", "\nMan (spea". */
const PARTIAL_TAG_RE = /\n[^\n():]{0,40}(?: \([a-z ]{0,20}\)?)?$/;

export class StopMatcher {
  private text = '';
  private emitted = 0;
  stopped = false;
  /** Which stop fired: the stop string, 'speaker-tag', or null. */
  reason: string | null = null;

  constructor(private readonly stopStrings: string[], private readonly stopOnSpeakerTag = true) {}

  /** Adds newly decoded text; returns the text safe to show now. */
  push(piece: string): string {
    if (this.stopped) return '';
    this.text += piece;
    let cut = -1;
    for (const s of this.stopStrings) {
      const i = this.text.indexOf(s, Math.max(0, this.emitted - s.length));
      if (i >= 0 && (cut < 0 || i < cut)) {
        cut = i;
        this.reason = s;
      }
    }
    if (this.stopOnSpeakerTag) {
      const m = TAG_RE.exec(this.text.slice(Math.max(0, this.emitted - 80)));
      if (m) {
        const i = Math.max(0, this.emitted - 80) + m.index;
        if (cut < 0 || i < cut) {
          cut = i;
          this.reason = 'speaker-tag';
        }
      }
    }
    if (cut >= 0) {
      this.stopped = true;
      const out = this.text.slice(this.emitted, Math.max(cut, this.emitted));
      this.emitted = Math.max(cut, this.emitted);
      this.text = this.text.slice(0, cut);
      return out;
    }
    const safeEnd = this.text.length - this.heldBack();
    const out = this.text.slice(this.emitted, safeEnd);
    this.emitted = Math.max(this.emitted, safeEnd);
    return out;
  }

  /** Length of the tail that could still be the beginning of a stop condition. */
  private heldBack(): number {
    let hold = 0;
    for (const s of this.stopStrings) {
      for (let k = Math.min(s.length - 1, this.text.length); k > 0; k--) {
        if (this.text.endsWith(s.slice(0, k))) {
          hold = Math.max(hold, k);
          break;
        }
      }
    }
    if (this.stopOnSpeakerTag) {
      const m = PARTIAL_TAG_RE.exec(this.text);
      if (m) hold = Math.max(hold, this.text.length - m.index);
    }
    return Math.min(hold, this.text.length - this.emitted);
  }

  /** At the end of generation: whatever was held back and did not turn into a stop. */
  flush(): string {
    if (this.stopped) return '';
    const out = this.text.slice(this.emitted);
    this.emitted = this.text.length;
    return out;
  }

  /** The full kept text (without the stop). */
  get fullText(): string {
    return this.text;
  }
}
