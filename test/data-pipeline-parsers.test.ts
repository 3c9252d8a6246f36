/**
 * Parser tests on hand-written model replies: 1-, 2-, 3- and 4-line blocks, colons in text,
 * ALL-CAPS names, (thinking) turns, preambles and epilogues, headings, markdown; plus a round trip
 * over real interview transcripts re-serialised into the block format, and a no-crash sweep.
 */
import { describe, expect, it } from 'vitest';
import { serializeTurns } from '../src/data/prompted.ts';
import { parseDialogue } from '../src/data/pipeline/parse-dialogue.ts';
import { parseScenes } from '../src/data/pipeline/parse-scenes.ts';
import { MersenneTwister } from '../src/data/pipeline/random.ts';
import { transcripts } from './fixtures/data-pipeline/helpers.ts';

const names = { shortName: 'Beethoven', fullName: 'Ludwig van Beethoven' };
const parse = (text: string, truncated = false) => parseDialogue(text, { ...names, truncated });

describe('scene parser', () => {
  it('reads the layout the prompt asks for', () => {
    const reply = 'Scene 1:\nType: Chat\nLocation: Neefe\'s room\nBackground: Beethoven begins his studies with Neefe.\n\nScene 2:\nType: Debate\nLocation: A salon in Bonn\nBackground: Beethoven argues about Mozart.';
    expect(parseScenes(reply)).toEqual({
      scenes: [
        { type: 'Chat', location: "Neefe's room", background: 'Beethoven begins his studies with Neefe.' },
        { type: 'Debate', location: 'A salon in Bonn', background: 'Beethoven argues about Mozart.' },
      ],
      rejects: [],
    });
  });

  it('keeps preamble and epilogue as rejects instead of crashing (original: KeyError)', () => {
    const { scenes, rejects } = parseScenes('Sure! Here are 20 scenes:\n\nScene 1:\nType: Speech\nLocation: Vienna\nBackground: A concert.\n\nI hope this helps!');
    expect(scenes).toEqual([{ type: 'Speech', location: 'Vienna', background: 'A concert.' }]);
    expect(rejects.map((r) => r.reason)).toEqual(['no Type/Location/Background fields (preamble, epilogue or prose)', 'no Type/Location/Background fields (preamble, epilogue or prose)']);
    expect(rejects[0]!.text).toBe('Sure! Here are 20 scenes:');
  });

  it('splits scenes written without blank lines, at Scene headers and at a repeated key', () => {
    const reply = 'Scene 1:\nType: Chat\nLocation: A\nBackground: a.\nScene 2:\nType: Debate\nLocation: B\nBackground: b.\nType: Speech\nLocation: C\nBackground: c.';
    expect(parseScenes(reply).scenes.map((s) => s.location)).toEqual(['A', 'B', 'C']);
  });

  it('takes the type from a "Scene N: Type" header when there is no Type line', () => {
    expect(parseScenes('Scene 3: Debate\nLocation: Bonn\nBackground: An argument.').scenes).toEqual([{ type: 'Debate', location: 'Bonn', background: 'An argument.' }]);
  });

  it('reads keys only at the start of a line, so a background mentioning "Location: " is not misread', () => {
    const { scenes } = parseScenes('Type: Chat\nLocation: Vienna\nBackground: He writes on the score: Location: unknown, date: 1802.');
    expect(scenes[0]).toEqual({ type: 'Chat', location: 'Vienna', background: 'He writes on the score: Location: unknown, date: 1802.' });
  });

  it('accepts markdown bold, bullets, CRLF, a header on its own block and wrapped values', () => {
    const reply = '**Scene 1:**\r\n\r\n- **Type:** Discussion\r\n- **Location:** The Burgtheater\r\n- **Background:** Beethoven and Salieri\r\ndiscuss opera.';
    expect(parseScenes(reply)).toEqual({ scenes: [{ type: 'Discussion', location: 'The Burgtheater', background: 'Beethoven and Salieri discuss opera.' }], rejects: [] });
  });

  it('rejects a scene with a missing or empty field, naming it', () => {
    const { scenes, rejects } = parseScenes('Scene 1:\nType: Chat\nLocation: Bonn\n\nScene 2:\nType: Chat\nLocation:\nBackground: x');
    expect(scenes).toEqual([]);
    expect(rejects.map((r) => r.reason)).toEqual(['missing Background', 'empty Location']);
  });
});

describe('dialogue parser', () => {
  it('1-line blocks: "Name (action): text" and "Name: text" keep everything after the first colon', () => {
    const { turns } = parse('Beethoven (speaking): Listen: the theme returns: softer.\n\nLily: Tell me: who taught you?');
    expect(turns).toEqual([
      { role: 'Beethoven', action: '(speaking)', content: 'Listen: the theme returns: softer.' },
      { role: 'Lily', action: '', content: 'Tell me: who taught you?' },
    ]);
  });

  it('2-line blocks: speaker line, then the utterance', () => {
    expect(parse('Neefe (speaking)\nYou have talent, Ludwig.').turns).toEqual([{ role: 'Neefe', action: '(speaking)', content: 'You have talent, Ludwig.' }]);
  });

  it('3-line blocks are one turn of two paragraphs (original: role/action/content mix-up)', () => {
    const { turns } = parse('Beethoven (speaking)\nMusic is a higher revelation.\nIt is the one spiritual entrance.');
    expect(turns).toEqual([{ role: 'Beethoven', action: '(speaking)', content: 'Music is a higher revelation.\nIt is the one spiritual entrance.' }]);
    // The serialised training text is what the original would have garbled into "Beethoven Music is ...: It is ...".
    expect(serializeTurns(turns, { protective: false })).toBe('Beethoven (speaking): Music is a higher revelation.\nIt is the one spiritual entrance.<|eot|>');
  });

  it('4+-line blocks are kept (original: silently dropped)', () => {
    const { turns, rejects } = parse('Neefe (speaking)\nOne.\nTwo.\nThree.\nFour.');
    expect(turns).toEqual([{ role: 'Neefe', action: '(speaking)', content: 'One.\nTwo.\nThree.\nFour.' }]);
    expect(rejects).toEqual([]);
  });

  it('(thinking) turns keep their action; the full name becomes the short name', () => {
    const { turns } = parse('Ludwig van Beethoven (thinking)\nHe cannot know how loud the silence is.\n\nBeethoven (Speaking )\nSit down.');
    expect(turns).toEqual([
      { role: 'Beethoven', action: '(thinking)', content: 'He cannot know how loud the silence is.' },
      { role: 'Beethoven', action: '(speaking)', content: 'Sit down.' },
    ]);
  });

  it('ALL-CAPS names are title-cased, with or without an action (screenplay style)', () => {
    const { turns } = parse('BEETHOVEN (speaking)\nWho is there?\n\nLILY\nOnly me.\n\nMILES DAVIS (speaking)\nAnd me.');
    expect(turns.map((t) => t.role)).toEqual(['Beethoven', 'Lily', 'Miles Davis']);
    expect(turns[1]).toEqual({ role: 'Lily', action: '', content: 'Only me.' });
  });

  it('reads the Background block, also when its text comes after a blank line', () => {
    expect(parse('Background: Bonn, 1782.\n\nNeefe (speaking)\nHello.').setting).toEqual(['Bonn, 1782.']);
    expect(parse('**Background:**\n\nBonn, 1782. Neefe\'s room.\n\nNeefe (speaking)\nHello.').setting).toEqual(["Bonn, 1782. Neefe's room."]);
  });

  it('preamble, headings, narration and epilogue are rejected with reasons, the turns survive', () => {
    const reply = [
      "Sure! Here's the script you asked for:",
      'Title: The Lesson',
      'Background:\nBonn, 1782.',
      'Neefe (speaking)\nPlay it again.',
      '(A long silence.)',
      'Beethoven (speaking)\nAs you wish.',
      'Beethoven leaves the room, slamming the door.',
      'THE END',
    ].join('\n\n');
    const { setting, turns, rejects } = parse(reply);
    expect(setting).toEqual(['Bonn, 1782.']);
    expect(turns.map((t) => t.content)).toEqual(['Play it again.', 'As you wish.']);
    expect(rejects.map((r) => r.reason)).toEqual([
      'text before the first turn (preamble)',
      'heading, not a turn',
      'text without a speaker line (narration)',
      'text after the last turn (epilogue)',
      'heading, not a turn',
    ]);
  });

  it('splits turns written without blank lines between them', () => {
    const { turns } = parse('Neefe (speaking)\nPlay.\nBeethoven (speaking)\nNo.\nNeefe: Then listen: like this.');
    expect(turns.map((t) => [t.role, t.content])).toEqual([
      ['Neefe', 'Play.'],
      ['Beethoven', 'No.'],
      ['Neefe', 'Then listen: like this.'],
    ]);
  });

  it('does not take a sentence with a colon inside an utterance for a new speaker', () => {
    const { turns } = parse('Beethoven (speaking)\nI tell you this:\nRemember: art demands everything.');
    expect(turns).toEqual([{ role: 'Beethoven', action: '(speaking)', content: 'I tell you this:\nRemember: art demands everything.' }]);
  });

  it('markdown speaker lines, wrapping quotes and stage directions', () => {
    const { turns, rejects } = parse('**Beethoven (speaking):** "I hear (sighs) nothing."\n\n**Lily** (speaking)\nI love the "Pathetique."\n\nNeefe (speaking)\n(He nods.)');
    expect(turns).toEqual([
      { role: 'Beethoven', action: '(speaking)', content: 'I hear nothing.' },
      // Only a pair of quotes wrapping the whole utterance is removed (original: the closing quote went too).
      { role: 'Lily', action: '(speaking)', content: 'I love the "Pathetique."' },
    ]);
    expect(rejects.map((r) => r.reason)).toEqual(['empty utterance (after removing stage directions)']);
  });

  it('removes <|eot|> and <|NONSTOP|> from model text and reads a literal \\n as a line break', () => {
    const { turns } = parse('Beethoven (speaking)\nFirst.\\nSecond.<|eot|><|NONSTOP|>');
    expect(turns).toEqual([{ role: 'Beethoven', action: '(speaking)', content: 'First.\nSecond.' }]);
  });

  it('drops the last turn of a reply cut at the token limit', () => {
    const { turns, rejects } = parse('Neefe (speaking)\nPlay.\n\nBeethoven (speaking)\nI will play the whole sona', true);
    expect(turns.map((t) => t.role)).toEqual(['Neefe']);
    expect(rejects[0]!.reason).toMatch(/cut off at the token limit/);
  });

  it('round-trips real interview transcripts re-serialised into the block format', () => {
    for (const t of transcripts()) {
      const reply = ['Background:\nA quiet room in Vienna.', ...t.turns.map((turn) => `${turn.role} ${turn.action}\n${turn.content}`)].join('\n\n');
      const parsed = parse(reply);
      expect(parsed.rejects, `qid ${t.qid}`).toEqual([]);
      expect(parsed.setting).toEqual(['A quiet room in Vienna.']);
      expect(parsed.turns, `qid ${t.qid}`).toEqual(t.turns);
    }
    expect(transcripts().some((t) => t.turns.some((turn) => turn.action === '(thinking)'))).toBe(true);
  });
});

describe('parsers never crash on model text', () => {
  it('survives 2,000 random replies built from fragments of both formats', () => {
    const fragments = ['Scene 1:', 'Type: Chat', 'Location:', 'Background:', 'Background: x', 'Beethoven (speaking)', 'LILY', 'Title: T', '(', ')', ':', '"', '**', '\n', '\n\n', '\r\n', 'Hello: there.', 'Ludwig van Beethoven (thinking):', '<|eot|>', '\\n', ' ', 'Ü', '()', 'Scene', '- '];
    const rng = MersenneTwister.fromPythonSeed(1);
    for (let n = 0; n < 2000; n++) {
      let text = '';
      const length = Math.floor(rng.random() * 30);
      for (let i = 0; i < length; i++) text += fragments[Math.floor(rng.random() * fragments.length)];
      const scenes = parseScenes(text);
      const dialogue = parse(text, rng.random() < 0.5);
      for (const s of scenes.scenes) expect(s.type && s.location && s.background).toBeTruthy();
      for (const turn of dialogue.turns) expect(turn.role !== '' && turn.content !== '').toBe(true);
    }
  });
});
