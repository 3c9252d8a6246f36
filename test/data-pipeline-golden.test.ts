/**
 * Golden tests of the pieces that must match the original byte for byte or pick for pick:
 * CPython's random (seed 42), the seeded scene top-up, template filling, the SFT meta prompt and
 * the turn serialisation. Fixtures are copies of the original data (see test/fixtures/data-pipeline/NOTICE).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EOT, fillMetaPrompt, META_PROMPT_SFT, PROTECTIVE_LOC_TIME, protectiveStatus, serializeTurns } from '../src/data/prompted.ts';
import { readProfile } from '../src/data/pipeline/profile.ts';
import { MersenneTwister, pythonChoicesIndices } from '../src/data/pipeline/random.ts';
import { buildDialogueItems, buildProtectiveItems, buildSceneItems } from '../src/data/pipeline/stages.ts';
import { loadTemplates, TEMPLATE_FILES, TEMPLATE_PLACEHOLDERS } from '../src/data/pipeline/template.ts';
import { fillTemplate, placeholdersOf } from '../src/data/template.ts';
import { pyStrip } from '../src/data/pipeline/text.ts';
import { FIXTURES, ORIGINAL_PROMPTS } from './fixtures/data-pipeline/helpers.ts';

const original = loadTemplates(ORIGINAL_PROMPTS);
const ours = loadTemplates();

describe('CPython random port', () => {
  it('random.seed(42): first random() values of CPython 3', () => {
    const rng = MersenneTwister.fromPythonSeed(42);
    expect([rng.random(), rng.random(), rng.random()]).toEqual([0.6394267984578837, 0.025010755222666936, 0.27502931836911926]);
  });

  it('choices() bisects cumulative weights and never returns past the last index', () => {
    const rng = MersenneTwister.fromPythonSeed(42);
    const picks = pythonChoicesIndices(rng, [0, 5, 0, 1], 200);
    expect(new Set(picks)).toEqual(new Set([1, 3]));
    expect(picks.filter((p) => p === 1).length).toBeGreaterThan(picks.filter((p) => p === 3).length);
  });
});

describe('seeded scene top-up (original templates reproduce the paper)', () => {
  it('Spartacus: 13 paragraphs x 7, then the 9 picks of CPython\'s random.choices', () => {
    const profile = readProfile(`${FIXTURES}wiki_Spartacus.txt`);
    expect(profile.fullName).toBe('Spartacus');
    expect(profile.paragraphs.length).toBe(13);
    const items = buildSceneItems(profile, original.scene, 100, 42);
    expect(items.length).toBe(100);
    expect(items.slice(0, 91).map((i) => i.paragraph)).toEqual(Array.from({ length: 91 }, (_, i) => i % 13));
    expect(items.slice(91).map((i) => i.paragraph)).toEqual([7, 0, 4, 3, 8, 7, 10, 1, 6]);
    expect(items.map((i) => i.id)).toEqual(Array.from({ length: 100 }, (_, i) => `scene_${i}`));
  });

  it('Beethoven: 59 paragraphs, then the 41 picks of CPython\'s random.choices', () => {
    const profile = readProfile(`${FIXTURES}wiki_Beethoven.txt`);
    expect(profile.fullName).toBe('Ludwig van Beethoven');
    expect(profile.shortName).toBe('Beethoven');
    expect(profile.paragraphs.length).toBe(59);
    const items = buildSceneItems(profile, original.scene, 100, 42);
    expect(items.slice(59).map((i) => i.paragraph)).toEqual([
      38, 1, 16, 13, 43, 40, 52, 5, 25, 1, 12, 30, 1, 11, 38, 32, 13, 35, 47, 0, 47, 41, 20, 9, 56, 20, 5, 5, 50, 36, 47, 42, 32, 57, 23, 33, 48, 37, 51, 34, 41,
    ]);
  });

  it('keeps every paragraph when there are more than --scenes (as the original does for Martin)', () => {
    const profile = readProfile(`${FIXTURES}wiki_Beethoven.txt`);
    const items = buildSceneItems(profile, ours.scene, 10, 42);
    expect(items.map((i) => i.paragraph)).toEqual(Array.from({ length: 59 }, (_, i) => i));
  });

  it('our templates: deterministic per seed, different for another seed', () => {
    const profile = readProfile(`${FIXTURES}wiki_Spartacus.txt`);
    const a = buildSceneItems(profile, ours.scene, 100, 42).map((i) => i.paragraph);
    expect(buildSceneItems(profile, ours.scene, 100, 42).map((i) => i.paragraph)).toEqual(a);
    expect(buildSceneItems(profile, ours.scene, 100, 7).map((i) => i.paragraph)).not.toEqual(a);
    expect(a.slice(0, 91)).toEqual(Array.from({ length: 91 }, (_, i) => i % 13));
  });
});

describe('template filling', () => {
  it('fills the original scene template like str.format (golden)', () => {
    const filled = fillTemplate(original.scene, { agent_summary: 'Spartacus was a Thracian gladiator.', agent_name: 'Spartacus' });
    expect(filled.startsWith('Context:\nSpartacus was a Thracian gladiator.\n\nImagine 20 scenes that describe the protagonist Spartacus only based on the above context.')).toBe(true);
    // strip() removed the trailing newline; the example block keeps its "Scene 1: " trailing space.
    expect(filled.endsWith('Scene 2: \nType: Debate\nLocation: ...\nBackground: ...')).toBe(true);
    expect(filled).toContain('\nScene 1: \nType: Chat (choice in chat, debate, discussion, speech)\n');
  });

  it('fills our scene template (golden)', () => {
    const filled = fillTemplate(ours.scene, { agent_summary: 'P.', agent_name: 'N' });
    expect(filled).toBe(
      'Source text:\nP.\n\n' +
        'Using only the source text above, sketch 20 different scenes from the life of N, who is the central figure of every scene. Keep each scene short: say where it happens and what situation the people are in, but do not write out what happens or what anyone says. Mix the kinds of scene (conversations, debates, discussions, speeches, and so on) and make them varied and inventive. Write all 20 of them.\n\n' +
        'Use exactly this layout, with a blank line between scenes:\nScene 1:\nType: Chat (one of chat, debate, discussion, speech)\nLocation: ...\nBackground: ...\n\nScene 2:\nType: Debate\nLocation: ...\nBackground: ...',
    );
  });

  it('is a single pass: a value containing {placeholder} is inserted literally', () => {
    expect(fillTemplate('{a} and {b}', { a: '{b}', b: 'B' })).toBe('{b} and B');
  });

  it('a placeholder without a value is an error naming the template', () => {
    expect(() => fillTemplate('x {missing}', {}, 'scene template')).toThrow(/scene template: placeholder \{missing\}/);
  });

  it('our templates use the same placeholders as the originals', () => {
    for (const kind of Object.keys(TEMPLATE_FILES) as (keyof typeof TEMPLATE_FILES)[]) {
      expect(new Set(placeholdersOf(ours[kind])), kind).toEqual(new Set(placeholdersOf(original[kind])));
      expect(placeholdersOf(ours[kind]).every((p) => TEMPLATE_PLACEHOLDERS[kind].includes(p))).toBe(true);
    }
  });

  it('our templates keep the output markers the parsers read, and are not copies', () => {
    for (const marker of ['Scene 1:', 'Type: ', 'Location: ', 'Background: ']) expect(ours.scene).toContain(marker);
    for (const marker of ['- Type: {type}', '- Location: {location}', '- Status: {background}', 'Background:\n', '{agent_short_name} (speaking)\n', '(thinking)', 'Character2 (speaking)']) {
      expect(ours.dialogue).toContain(marker);
    }
    for (const marker of ['Background:\n', '{agent_short_name} (speaking)\n', 'Character2 (speaking)', 'Lily or Miles']) expect(ours.protective).toContain(marker);
    for (const kind of ['scene', 'dialogue', 'protective'] as const) expect(ours[kind]).not.toBe(original[kind]);
  });

  it('dialogue and protective prompts carry the scene fields and names', () => {
    const profile = { fullName: 'Ludwig van Beethoven', shortName: 'Beethoven', paragraphs: ['Para zero.', 'Para one.'] };
    const scene = { source: 'scene_3_c2', type: 'Chat', location: "Neefe's room", background: 'Beethoven begins his studies.', paragraph: 1, profile: 'Para one.' };
    const [dialogue] = buildDialogueItems(profile, original.dialogue, [scene]);
    expect(dialogue!.id).toBe('dialogue_scene_3_c2');
    expect(dialogue!.prompt).toContain("Context:\nPara one.\n\nThe setting is as follows.\n- Type: Chat\n- Location: Neefe's room\n- Status: Beethoven begins his studies.\n");
    expect(dialogue!.prompt.endsWith('Background:\nDetailed background ...\n\nBeethoven (speaking)\nDetailed utterance ...\n\nCharacter2 (speaking)\nDetailed utterance ...')).toBe(true);
    const protective = buildProtectiveItems(profile, original.protective);
    expect(protective.map((p) => p.id)).toEqual(['protective_0', 'protective_1']);
    expect(protective[0]!.prompt).toContain('\n\nBeethoven  (speaking)\n');
  });
});

describe('SFT format (src/data/prompted.ts)', () => {
  it('META_PROMPT_SFT is the original file, stripped', () => {
    expect(META_PROMPT_SFT).toBe(pyStrip(readFileSync(`${ORIGINAL_PROMPTS}/agent_meta_prompt_sft.txt`, 'utf8')));
  });

  it('fills the protective meta prompt exactly as the original converter writes it, with the trailing blank line', () => {
    expect(fillMetaPrompt({ character: 'Socrates', loc_time: PROTECTIVE_LOC_TIME, status: protectiveStatus('Socrates') })).toBe(
      'I want you to act like Socrates. I want you to respond and answer like Socrates, using the tone, manner and vocabulary Socrates would use. You must know all of the knowledge of Socrates. \n\nThe status of you is as follows:\nLocation: A room\nStatus: Socrates is chatting with a person.\n\nThe interactions are as follows:\n\n',
    );
  });

  it('serialises turns as Name (action): text<|eot|> joined by newlines', () => {
    const turns = [
      { role: 'Man', action: '(speaking)', content: "Socrates, I've heard that Plato and Xenophon were two of your students." },
      { role: 'Socrates', action: '(thinking)', content: 'Ah, an interesting question.' },
      { role: 'Socrates', action: '(speaking)', content: 'Plato and Xenophon. They were both young and eager to learn.' },
      { role: 'Man', action: '(speaking)', content: 'What made Plato particularly bright?' },
    ];
    expect(serializeTurns(turns, { protective: false })).toBe(
      "Man (speaking): Socrates, I've heard that Plato and Xenophon were two of your students.<|eot|>\n" +
        'Socrates (thinking): Ah, an interesting question.<|eot|>\n' +
        'Socrates (speaking): Plato and Xenophon. They were both young and eager to learn.<|eot|>\n' +
        'Man (speaking): What made Plato particularly bright?<|eot|>',
    );
  });

  it('merges consecutive turns of the same speaker and action with a single newline', () => {
    const turns = [
      { role: 'Beethoven', action: '(speaking)', content: 'One.' },
      { role: 'Beethoven', action: '(speaking)', content: 'Two.' },
      { role: 'Beethoven', action: '(thinking)', content: 'Three.' },
      { role: 'Neefe', action: '', content: 'Four.' },
      { role: 'Neefe', action: '(speaking)', content: 'Five.' },
    ];
    expect(serializeTurns(turns, { protective: false })).toBe(
      'Beethoven (speaking): One.\nTwo.<|eot|>\nBeethoven (thinking): Three.<|eot|>\nNeefe (speaking): Four.\nFive.<|eot|>',
    );
    // Protective scenes are all (speaking): the thinking turn merges into the speech before it.
    expect(serializeTurns(turns, { protective: true })).toBe('Beethoven (speaking): One.\nTwo.\nThree.<|eot|>\nNeefe (speaking): Four.\nFive.<|eot|>');
    expect(serializeTurns([], { protective: false })).toBe(EOT);
  });
});
