import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { nextTokenTargets, targetCount, tokenizeSample } from '../src/data/sft.ts';
import { readPromptedFile } from '../src/formats/prompted-file.ts';
import { fillMetaPrompt } from '../src/data/prompted.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'sft-'));
const write = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
const tok = await Tokenizer.load('weights/tiny/tokenizer.model');

describe('readPromptedFile', () => {
  const a = { prompt: 'P1\n\n', output: 'Man (speaking): hi<|eot|>' };
  const b = { prompt: 'P2\n\n', output: 'Beethoven (speaking): yes<|eot|>', source: 'x' };
  it('reads JSONL and JSON arrays by content, whatever the extension', () => {
    expect(readPromptedFile(write('a.json', `${JSON.stringify(a)}\n\n${JSON.stringify(b)}\n`))).toEqual([a, b]);
    expect(readPromptedFile(write('b.jsonl', `  ${JSON.stringify([a, b])}`))).toEqual([a, b]);
  });
  it('names the file and line of a malformed line', () => {
    const f = write('bad.jsonl', `${JSON.stringify(a)}\n{"prompt": "x", "output": 3}\n`);
    expect(() => readPromptedFile(f)).toThrow(`${f}:2: "output" missing or not a string`);
    const g = write('bad2.jsonl', `${JSON.stringify(a)}\n${JSON.stringify(a)}\n{oops\n`);
    expect(() => readPromptedFile(g)).toThrow(new RegExp(`^${g.replace(/[.]/g, '\\.')}:3: malformed JSON line`));
  });
  it('rejects an empty or missing file with its name', () => {
    expect(() => readPromptedFile(write('empty.jsonl', '\n'))).toThrow('no samples');
    expect(() => readPromptedFile(path.join(dir, 'nope.jsonl'))).toThrow('cannot read (ENOENT)');
  });
});

describe('tokenizeSample (the paper\'s masking)', () => {
  const sample = {
    prompt: fillMetaPrompt({ character: 'Ludwig van Beethoven', loc_time: 'Coffee Shop - Afternoon', status: 'Beethoven is casually chatting.' }),
    output: 'Man (speaking): Where were you born?<|eot|>\nBeethoven (speaking): In Bonn, in 1770.<|eot|>',
  };
  it('ids = [BOS] + sp(prompt + output) + [EOS]; targets start after BOS + the prompt', () => {
    const t = tokenizeSample(tok, sample, 2048)!;
    expect(t.ids).toEqual([tok.bosId, ...tok.encode(sample.prompt + sample.output), tok.eosId]);
    expect(t.targetStart).toBe(1 + tok.encode(sample.prompt).length);
    // The prompt tokenises as an exact prefix of prompt + output (it ends in "\n\n").
    expect(t.ids.slice(1, t.targetStart)).toEqual(tok.encode(sample.prompt));
    expect(targetCount(t)).toBe(t.ids.length - t.targetStart);
    const targets = nextTokenTargets(t, t.ids.length + 3);
    // Row r predicts ids[r + 1]; rows before targetStart - 1 and padding carry no loss; the EOS is a target.
    expect([...targets].filter((v) => v >= 0).length).toBe(targetCount(t));
    expect(targets[t.targetStart - 2]).toBe(-1);
    expect(targets[t.targetStart - 1]).toBe(t.ids[t.targetStart]);
    expect(targets[t.ids.length - 2]).toBe(tok.eosId);
    expect(targets[t.ids.length - 1]).toBe(-1);
  });
  it('truncates to max-len (losing the EOS) and skips samples whose prompt alone does not fit', () => {
    const full = tokenizeSample(tok, sample, 2048)!;
    const t = tokenizeSample(tok, sample, full.targetStart + 3)!;
    expect(t.truncated).toBe(true);
    expect(t.ids).toEqual(full.ids.slice(0, full.targetStart + 3));
    expect(tokenizeSample(tok, sample, full.targetStart)).toBeNull();
  });
});
