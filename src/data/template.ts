/**
 * Prompt templates: `{name}` placeholders filled in ONE regex pass (like Python's `str.format`,
 * a value that itself contains `{x}` is inserted literally, never re-expanded). Used by the SFT
 * format (prompted.ts) and the data-set pipeline's generation templates (pipeline/template.ts).
 */
import { UserError } from '../errors.ts';

const PLACEHOLDER_RE = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The placeholders a template uses, in order of first appearance. */
export function placeholdersOf(template: string): string[] {
  const names: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER_RE)) if (!names.includes(m[1]!)) names.push(m[1]!);
  return names;
}

/** Fills every `{name}` from `values`; a placeholder without a value is an error (as KeyError is in Python). */
export function fillTemplate(template: string, values: Record<string, string>, templateName = 'template'): string {
  return template.replace(PLACEHOLDER_RE, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new UserError(`${templateName}: placeholder {${name}} has no value (known: ${Object.keys(values).join(', ')})`);
    return value;
  });
}
