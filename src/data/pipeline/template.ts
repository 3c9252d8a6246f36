import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../errors.ts';
import { pyStrip } from './text.ts';

/**
 * Prompt templates: `{name}` placeholders filled in ONE regex pass (like Python's `str.format`,
 * a value that itself contains `{x}` is inserted literally, never re-expanded).
 */

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

/** The three generation templates, under the file names the original uses, so `--prompts` can point at its folder. */
export const TEMPLATE_FILES = {
  scene: 'prompt_agent_scene.txt',
  dialogue: 'prompt_agent_dialogue.txt',
  protective: 'prompt_agent_dialogue_adv.txt',
} as const;
export type TemplateKind = keyof typeof TEMPLATE_FILES;

/** Placeholders each template may use; a template using anything else cannot be filled, so it is rejected at load time. */
export const TEMPLATE_PLACEHOLDERS: Record<TemplateKind, readonly string[]> = {
  scene: ['agent_summary', 'agent_name'],
  dialogue: ['agent_summary', 'type', 'location', 'background', 'agent_name', 'agent_short_name'],
  protective: ['agent_summary', 'agent_name', 'agent_short_name'],
};

export type Templates = Record<TemplateKind, string> & { dir: string };

/** Our own templates, shipped in src/data/prompts. */
export const DEFAULT_PROMPTS_DIR = fileURLToPath(new URL('../prompts/', import.meta.url));

/**
 * Loads and `strip()`s the three templates from `dir` (ours by default; the original files work too),
 * checking that each one only uses the placeholders its stage can fill and that it uses the profile text.
 */
export function loadTemplates(dir: string = DEFAULT_PROMPTS_DIR): Templates {
  const loaded = { dir } as Templates;
  for (const kind of Object.keys(TEMPLATE_FILES) as TemplateKind[]) {
    const path = join(dir, TEMPLATE_FILES[kind]);
    if (!existsSync(path)) throw new UserError(`${path}: template not found (--prompts must hold ${Object.values(TEMPLATE_FILES).join(', ')})`);
    const text = pyStrip(readFileSync(path, 'utf8').replace(/\r\n?/g, '\n'));
    const used = placeholdersOf(text);
    const unknown = used.filter((p) => !TEMPLATE_PLACEHOLDERS[kind].includes(p));
    if (unknown.length > 0) throw new UserError(`${path}: unknown placeholder(s) ${unknown.map((p) => `{${p}}`).join(', ')}; allowed: ${TEMPLATE_PLACEHOLDERS[kind].join(', ')}`);
    if (!used.includes('agent_summary')) throw new UserError(`${path}: template never uses {agent_summary}, so the profile text would not reach the model`);
    loaded[kind] = text;
  }
  return loaded;
}
