import { normalizeNewlines, pyStrip } from './text.ts';

/**
 * Scene parser: a model reply to the scene template -> scenes {type, location, background}.
 *
 * Differences from the original `parse_data_scene.py` (also listed in docs/data-pipeline.md, "How
 * our output differs from the original"):
 * - it never throws: text that is not a scene (preamble, epilogue, a scene with a field missing)
 *   is returned in `rejects` with the reason (the original crashed with KeyError on the first one);
 * - fields are recognised only at the start of a line (the original matched "Type: " anywhere, so a
 *   background mentioning "Location: " overwrote the location), with markdown bold and list bullets
 *   allowed around the key;
 * - scenes not separated by blank lines are split at "Scene N" headers and at a repeated key
 *   (the original merged them and kept the last value of each key);
 * - a field value wrapped onto following lines keeps those lines (the original dropped them);
 * - a "Scene N: Debate" header gives the type when there is no Type line (the original did this
 *   only for blocks of exactly 3 lines).
 */

export type Scene = { type: string; location: string; background: string };
export type Reject = { text: string; reason: string };
export type SceneParseResult = { scenes: Scene[]; rejects: Reject[] };

type FieldKey = keyof Scene;
const FIELD_NAMES: Record<string, FieldKey> = { type: 'type', location: 'location', background: 'background' };

/** `Type: Chat`, `- **Location:** Bonn`, `* Background: ...` (case-insensitive key). */
const FIELD_LINE_RE = /^\s*(?:[-*•]\s+)?(?:\*\*|__)?\s*(type|location|background)\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(.*)$/i;
/** `Scene 3:`, `**Scene 3: Debate**`, `### Scene 3 - The audition`. */
const SCENE_HEADER_RE = /^\s*(?:#+\s*)?(?:\*\*|__)?\s*scene\s*#?\s*\d+\s*(?:\*\*|__)?\s*[:.)\-–—]?\s*(.*)$/i;

function cleanValue(value: string): string {
  return pyStrip(value.replace(/^(?:\*\*|__)+|(?:\*\*|__)+$/g, ''));
}

type Segment = { lines: string[]; header?: string; fields: Partial<Scene>; lastField?: FieldKey; strayText: boolean };

function newSegment(): Segment {
  return { lines: [], fields: {}, strayText: false };
}

export function parseScenes(completion: string): SceneParseResult {
  const segments: Segment[] = [];
  let current = newSegment();
  const closeCurrent = () => {
    if (current.lines.length > 0) segments.push(current);
    current = newSegment();
  };

  for (const rawLine of normalizeNewlines(completion).split('\n')) {
    if (pyStrip(rawLine) === '') {
      // A header alone ("Scene 1:" then a blank line, then the fields) belongs to the next block.
      if (current.header !== undefined && Object.keys(current.fields).length === 0 && !current.strayText) continue;
      closeCurrent();
      continue;
    }
    const header = SCENE_HEADER_RE.exec(rawLine);
    if (header) {
      closeCurrent();
      current.header = cleanValue(header[1]!);
      current.lines.push(rawLine);
      continue;
    }
    const field = FIELD_LINE_RE.exec(rawLine);
    if (field) {
      const key = FIELD_NAMES[field[1]!.toLowerCase()]!;
      // The same key twice means the model ran two scenes together without a blank line.
      if (current.fields[key] !== undefined) closeCurrent();
      current.fields[key] = cleanValue(field[2]!);
      current.lastField = key;
      current.lines.push(rawLine);
      continue;
    }
    if (current.lastField !== undefined) {
      // A value wrapped onto the next line.
      const key = current.lastField;
      current.fields[key] = pyStrip(`${current.fields[key] ?? ''} ${cleanValue(rawLine)}`);
    } else {
      current.strayText = true;
    }
    current.lines.push(rawLine);
  }
  closeCurrent();

  const scenes: Scene[] = [];
  const rejects: Reject[] = [];
  for (const segment of segments) {
    const text = segment.lines.join('\n');
    const fields = { ...segment.fields };
    if (fields.type === undefined && segment.header) fields.type = segment.header;
    const present = (Object.keys(FIELD_NAMES) as FieldKey[]).filter((k) => fields[k] !== undefined);
    if (present.length === 0) {
      rejects.push({ text, reason: segment.header !== undefined ? 'scene header without Type/Location/Background' : 'no Type/Location/Background fields (preamble, epilogue or prose)' });
      continue;
    }
    const missing = (['type', 'location', 'background'] as FieldKey[]).filter((k) => fields[k] === undefined);
    if (missing.length > 0) {
      rejects.push({ text, reason: `missing ${missing.map(capitalize).join(', ')}` });
      continue;
    }
    const empty = (['type', 'location', 'background'] as FieldKey[]).filter((k) => fields[k] === '');
    if (empty.length > 0) {
      rejects.push({ text, reason: `empty ${empty.map(capitalize).join(', ')}` });
      continue;
    }
    scenes.push({ type: fields.type!, location: fields.location!, background: fields.background! });
  }
  return { scenes, rejects };
}

function capitalize(word: string): string {
  return word[0]!.toUpperCase() + word.slice(1);
}
