/**
 * Small string helpers with Python semantics, because the original pipeline is Python and some of
 * its behaviour (profile splitting, template stripping) must be reproduced exactly.
 */

/** Characters Python's `str.isspace()` accepts; a bit wider than JS `\s` (adds U+001C..U+001F and U+0085). */
const PY_SPACE = '\\s\\x1c-\\x1f\\x85';
const PY_STRIP_RE = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

/** Python `s.strip()` with no argument. */
export function pyStrip(text: string): string {
  return text.replace(PY_STRIP_RE, '');
}

/** Model replies may come with CRLF or lone CR line ends; every parser works on LF only. */
export function normalizeNewlines(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/** Words as Python's `str.split()` counts them (used for the same statistics as count_dialogue.py). */
export function countWords(text: string): number {
  const trimmed = pyStrip(text);
  return trimmed === '' ? 0 : trimmed.split(/[\s\x1c-\x1f\x85]+/).length;
}
