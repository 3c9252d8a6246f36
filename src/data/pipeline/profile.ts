import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { UserError } from '../../errors.ts';
import { normalizeNewlines, pyStrip } from './text.ts';

/** A character profile: `# Full Name`, then paragraphs separated by blank lines (parseProfile below). */
export type Profile = {
  /** Header of the profile file, e.g. "Ludwig van Beethoven". */
  fullName: string;
  /** The file/CLI key, e.g. "Beethoven": from `wiki_<Short>.txt` unless given. */
  shortName: string;
  /** Paragraphs in file order, each stripped. */
  paragraphs: string[];
};

/** `wiki_Beethoven.txt` -> `Beethoven`; any other name -> its base name without extension. */
export function shortNameFromPath(path: string): string {
  const base = basename(path).replace(/\.[^.]*$/, '');
  return base.startsWith('wiki_') ? base.slice('wiki_'.length) : base;
}

/**
 * Parses profile text like the original `read_profile`: strip, split on "\n\n", part 0 is the
 * `# Name` header. Unlike the original, CRLF files are accepted and empty parts (3+ blank lines
 * in a row) are skipped instead of becoming empty prompts; the shipped profiles have neither.
 */
export function parseProfile(text: string, shortName: string, sourceName = 'profile'): Profile {
  const parts = pyStrip(normalizeNewlines(text)).split('\n\n');
  const header = parts[0] ?? '';
  if (!header.startsWith('# ')) throw new UserError(`${sourceName}: must start with a "# Full Name" line, found ${JSON.stringify(header.slice(0, 40))}`);
  const fullName = pyStrip(header.replaceAll('#', ''));
  if (fullName === '') throw new UserError(`${sourceName}: the "# Full Name" header is empty`);
  const paragraphs = parts.slice(1).map(pyStrip).filter((p) => p !== '');
  if (paragraphs.length === 0) throw new UserError(`${sourceName}: no paragraphs after the header (paragraphs are separated by blank lines)`);
  if (shortName.trim() === '') throw new UserError(`${sourceName}: empty character short name (use --name)`);
  return { fullName, shortName, paragraphs };
}

export function readProfile(path: string, shortName?: string): Profile {
  if (!existsSync(path)) throw new UserError(`${path}: profile not found`);
  return parseProfile(readFileSync(path, 'utf8'), shortName ?? shortNameFromPath(path), path);
}
