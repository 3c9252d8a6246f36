/**
 * The characters of the Character-LLM paper: short name (as used in turns, `Beethoven (speaking):`)
 * and full name (as used in the meta prompt). Any other name is accepted as is, with the full name
 * equal to the short one unless `--full-name` is given.
 */
export const KNOWN_CHARACTERS: Record<string, string> = {
  Beethoven: 'Ludwig van Beethoven',
  Caesar: 'Julius Caesar',
  Cleopatra: 'Cleopatra',
  Hermione: 'Hermione Granger',
  Martin: 'Martin Luther King Jr.',
  Newton: 'Isaac Newton',
  Socrates: 'Socrates',
  Spartacus: 'Spartacus',
  Voldemort: 'Lord Voldemort',
};

export function fullNameOf(shortName: string, override?: string): string {
  return override ?? KNOWN_CHARACTERS[shortName] ?? shortName;
}

/** The test-time setting of the Character-LLM README's chat demo: a casual chat in a coffee shop. */
export const DEFAULT_LOCATION = 'Coffee Shop - Afternoon';
export function defaultStatus(shortName: string): string {
  return `${shortName} is casually chatting with a man from the 21st century.`;
}
