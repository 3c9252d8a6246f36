/**
 * The data-set pipeline's generation templates: their file names and allowed placeholders, and
 * loading and checking them (filling is ../template.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../errors.ts';
import { placeholdersOf } from '../template.ts';
import { pyStrip } from './text.ts';

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
