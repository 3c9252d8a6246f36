import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.ts';
import { parseSentencePieceModel, PieceType } from '../src/data/sentencepiece-model.ts';
import { Tokenizer } from '../src/data/tokenizer.ts';

// Reference values from Debian's python3-sentencepiece: test/fixtures/make_tokenizer_fixture.py.
interface Fixture {
  model: string;
  model_sha256: string;
  vocab_size: number;
  bos_id: number;
  eos_id: number;
  unk_id: number;
  pad_id: number;
  pieces: string[];
  control_ids: number[];
  unknown_ids: number[];
  byte_ids: number[];
  piece_to_id: Record<string, number>;
  encode: { text: string; ids: number[]; decoded: string }[];
  decode: { ids: number[]; text: string }[];
  long: { text: string; ids: number[] };
}
const fx = JSON.parse(readFileSync('test/fixtures/tokenizer_cases.json', 'utf8')) as Fixture;
const MODEL = 'weights/tiny/tokenizer.model';

let tok: Tokenizer;
let tmp: string;

beforeAll(async () => {
  tok = await Tokenizer.load(MODEL);
  tmp = mkdtempSync(join(tmpdir(), 'wgpu-char-tok-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every push() and the final flush() of a stream decoder, in order. */
function streamParts(ids: number[]): string[] {
  const d = tok.createStreamDecoder();
  const parts = ids.map((id) => d.push(id));
  parts.push(d.flush());
  return parts;
}

describe('tiny tokenizer model', () => {
  it('is the model the fixture was made from', () => {
    const sha = createHash('sha256').update(readFileSync(MODEL)).digest('hex');
    expect(sha, 'weights/tiny/tokenizer.model changed: re-run /usr/bin/python3 test/fixtures/make_tokenizer_fixture.py').toBe(fx.model_sha256);
  });

  it('vocab size, special ids, pieces and types from the protobuf equal sentencepiece', () => {
    expect(tok.vocabSize).toBe(fx.vocab_size);
    expect(tok.vocabSize).toBe(4000);
    expect([tok.bosId, tok.eosId, tok.unkId, tok.padId]).toEqual([fx.bos_id, fx.eos_id, fx.unk_id, fx.pad_id]);
    expect([tok.bosId, tok.eosId, tok.unkId, tok.padId]).toEqual([1, 2, 0, -1]);
    expect(tok.model.pieces.map((p) => p.piece)).toEqual(fx.pieces);
    const ofType = (t: number) => tok.model.pieces.flatMap((p, i) => (p.type === t ? [i] : []));
    expect(ofType(PieceType.CONTROL)).toEqual(fx.control_ids);
    expect(ofType(PieceType.UNKNOWN)).toEqual(fx.unknown_ids);
    expect(ofType(PieceType.BYTE)).toEqual(fx.byte_ids);
    for (let id = 0; id < tok.vocabSize; id += 37) expect(tok.idToPiece(id)).toBe(fx.pieces[id]);
    for (const [piece, id] of Object.entries(fx.piece_to_id)) expect(tok.pieceToId(piece), piece).toBe(id);
  });

  it('reads the trainer and normalizer settings of scripts/make-tiny-tokenizer.sh', () => {
    const { trainerSpec: t, normalizerSpec: n } = tok.model;
    expect(t).toMatchObject({ modelType: 2, vocabSize: 4000, byteFallback: true, unkId: 0, bosId: 1, eosId: 2, padId: -1 });
    expect(n).toMatchObject({ name: 'identity', addDummyPrefix: true, removeExtraWhitespaces: false, precompiledCharsmapLength: 0 });
    expect(tok.model.pieces[fx.byte_ids[0]!]!.piece).toBe('<0x00>');
  });
});

describe('encode', () => {
  it('gives the reference ids on newlines, digits, emoji, CJK, spaces and <|eot|>', () => {
    for (const c of fx.encode) expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
  });

  it('adds BOS/EOS only when asked', () => {
    const ids = tok.encode('Hello world');
    expect(tok.encode('Hello world', {})).toEqual(ids);
    expect(tok.encode('Hello world', { bos: true })).toEqual([1, ...ids]);
    expect(tok.encode('Hello world', { bos: true, eos: true })).toEqual([1, ...ids, 2]);
    expect(tok.encode('', { bos: true })).toEqual([1]);
  });

  it('treats <|eot|>, <s> and </s> as plain text', () => {
    const ids = tok.encode('<|eot|>');
    expect(ids).not.toContain(tok.bosId);
    expect(ids).not.toContain(tok.eosId);
    expect(ids.length).toBeGreaterThan(1);
    expect(tok.encode('<s></s>')).not.toContain(tok.bosId);
  });

  it('turns lone surrogates into U+FFFD instead of corrupting the next character', () => {
    expect(tok.encode('x\ud800y')).toEqual(tok.encode('x\ufffdy'));
    expect(tok.encode('x\udc00')).toEqual(tok.encode('x\ufffd'));
  });

  it('splitting long inputs after newlines gives exactly the whole-text ids', () => {
    const { text, ids } = fx.long;
    expect(tok.encode(text, { chunkChars: Infinity })).toEqual(ids);
    for (const chunkChars of [20_000, 1000, 100, 10, 1]) {
      expect(tok.encode(text, { chunkChars }), `chunkChars ${chunkChars}`).toEqual(ids);
    }
    // Chunks that start with newlines, spaces or blank lines, with BOS/EOS around.
    const tricky = '\n\n  a\n \n\nb  \n\n\n 🙂\n日本\n\n';
    expect(tok.encode(tricky, { chunkChars: 1, bos: true, eos: true })).toEqual(tok.encode(tricky, { chunkChars: Infinity, bos: true, eos: true }));
    for (const c of fx.encode) expect(tok.encode(c.text, { chunkChars: 1 }), JSON.stringify(c.text)).toEqual(c.ids);
  });

  it('keeps the wasm heap small on a multi-megabyte document', () => {
    const doc = (fx.long.text + '\n').repeat(60); // ~2.4 MB
    const t0 = performance.now();
    const ids = tok.encode(doc);
    const ms = performance.now() - t0;
    expect(ids.length).toBeGreaterThan(60 * fx.long.ids.length * 0.9);
    // Whole, sentencepiece would grow the heap to ~180 MB for this (and keep it).
    expect(Tokenizer.wasmHeapBytes()).toBeLessThanOrEqual(64 * 2 ** 20);
    console.log(`encode: ${(doc.length / 1e6).toFixed(1)} M chars -> ${ids.length} ids in ${ms.toFixed(0)} ms (${Math.round(ids.length / (ms / 1000))} tok/s), wasm heap ${Tokenizer.wasmHeapBytes() / 2 ** 20} MiB`);
  });
});

describe('decode', () => {
  it('equals sentencepiece decode of the encoded cases', () => {
    for (const c of fx.encode) expect(tok.decode(c.ids), JSON.stringify(c.text)).toBe(c.decoded);
  });

  it('round-trips text (identity normalisation)', () => {
    for (const c of fx.encode) {
      if (c.text.includes('\u2581')) continue; // a literal ▁ decodes to a space, as in sentencepiece
      expect(tok.decode(tok.encode(c.text))).toBe(c.text);
    }
    expect(tok.decode(fx.long.ids)).toBe(fx.long.text);
  });

  it('equals sentencepiece on control tokens, <unk>, broken byte sequences and random ids', () => {
    for (const c of fx.decode) expect(tok.decode(c.ids), JSON.stringify(c.ids)).toBe(c.text);
  });

  it('agrees with the wasm DecodeIds', () => {
    const wasmDecode = (ids: number[]) => (tok as unknown as { decodeWasm(ids: number[]): string }).decodeWasm(ids);
    for (const c of fx.decode) expect(wasmDecode(c.ids), JSON.stringify(c.ids)).toBe(c.text);
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([5, 4000])).toThrow(RangeError);
    expect(() => tok.decode([-1])).toThrow(RangeError);
    expect(() => tok.decode([1.5])).toThrow(RangeError);
    expect(() => tok.idToPiece(4000)).toThrow(/outside the vocabulary/);
  });
});

describe('stream decoder', () => {
  it('concatenates to decode()', () => {
    for (const c of [...fx.encode, ...fx.decode]) {
      expect(streamParts(c.ids).join(''), JSON.stringify(c.ids)).toBe(tok.decode(c.ids));
    }
    expect(streamParts(fx.long.ids).join('')).toBe(fx.long.text);
  });

  it('holds byte pieces until they form a character', () => {
    const smile = tok.encode('🙂'); // ▁ + 4 byte pieces
    expect(smile.map((id) => tok.idToPiece(id))).toEqual(['▁', '<0xF0>', '<0x9F>', '<0x99>', '<0x82>']);
    expect(streamParts(smile)).toEqual(['', '', '', '', '🙂', '']);
    // A broken sequence is repaired as soon as it is known to be broken.
    const b = (x: number) => tok.pieceToId(`<0x${x.toString(16).toUpperCase().padStart(2, '0')}>`);
    expect(streamParts([b(0xe6), b(0x41), b(0x97)])).toEqual(['', '\ufffdA', '\ufffd', '']);
  });

  it('drops the leading dummy-prefix space once, as decode does', () => {
    const ids = tok.encode('Hello world. How are you?');
    const parts = streamParts(ids);
    expect(parts[0]).not.toMatch(/^ /);
    expect(parts.join('')).toBe('Hello world. How are you?');
    expect(streamParts([tok.bosId, ...ids]).join('')).toBe('Hello world. How are you?');
  });
});

describe('loading', () => {
  const userError = (f: () => unknown): UserError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      expect((e as Error).message).not.toMatch(/\n/);
      return e as UserError;
    }
    throw new Error('expected a UserError');
  };

  it('loads synchronously once the wasm is ready, several models at once', async () => {
    const a = Tokenizer.loadSync(MODEL);
    const b = await Tokenizer.load(MODEL);
    expect(a.path).toBe(MODEL);
    expect(a.encode('Hello world')).toEqual(tok.encode('Hello world'));
    b.dispose();
    expect(a.encode('Hello world')).toEqual(tok.encode('Hello world'));
    expect(tok.encode('Hello world')).toEqual(fx.encode[0]!.ids);
    a.dispose();
  });

  it('a missing file or a directory is a UserError naming it', async () => {
    const missing = join(tmp, 'nope/tokenizer.model');
    await expect(Tokenizer.load(missing)).rejects.toThrow(UserError);
    expect(userError(() => Tokenizer.loadSync(missing)).message).toBe(`${missing}: no such file`);
    expect(userError(() => Tokenizer.loadSync(tmp)).message).toMatch(new RegExp(`^${tmp}: is a directory`));
  });

  it('a file that is not a model is a UserError naming it and the byte', () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ['text.model', Buffer.from('hello world, not a model\n'), /protobuf parse failed at byte \d+/],
      ['empty.model', new Uint8Array(0), /empty file/],
      ['json.model', Buffer.from('{"vocab": {"a": 1}}'), /protobuf parse failed at byte \d+/],
      ['zeros.model', new Uint8Array(64), /protobuf parse failed at byte 0/],
      ['safetensors.model', Buffer.concat([Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a":1}')]), /./],
    ];
    for (const [name, bytes, why] of cases) {
      const f = join(tmp, name);
      writeFileSync(f, bytes);
      const msg = userError(() => Tokenizer.loadSync(f)).message;
      expect(msg, name).toMatch(new RegExp(`^${f}: not a sentencepiece model \\(`));
      expect(msg, name).toMatch(why);
    }
  });

  it('a well-formed protobuf that sentencepiece rejects is a UserError naming the file', () => {
    // pieces { piece: "a" } (no <unk>), empty trainer_spec and normalizer_spec
    const f = join(tmp, 'no-unk.model');
    writeFileSync(f, Uint8Array.from([0x0a, 0x03, 0x0a, 0x01, 0x61, 0x12, 0x00, 0x1a, 0x00]));
    expect(parseSentencePieceModel(readFileSync(f), f).pieces).toEqual([{ piece: 'a', score: 0, type: PieceType.NORMAL }]);
    expect(userError(() => Tokenizer.loadSync(f)).message).toMatch(new RegExp(`^${f}: sentencepiece cannot load it \\(.*unk is not defined`));
  });

  it('a truncated model is a UserError naming it, wherever it is cut', () => {
    const good = readFileSync(MODEL);
    const cuts = new Set([1, 2, 17, 100, 1000, good.length >> 1, good.length - 100, good.length - 20, good.length - 1]);
    // Cuts exactly between two pieces parse as protobuf but lack the specs that follow them.
    let at = 0;
    for (let i = 0; i < 5; i++) {
      at += 2 + good[at + 1]!; // tag 0x0a + one-byte length for these short pieces
      cuts.add(at);
    }
    for (const cut of [...cuts].sort((x, y) => x - y)) {
      const f = join(tmp, `cut-${cut}.model`);
      writeFileSync(f, good.subarray(0, cut));
      const msg = userError(() => Tokenizer.loadSync(f)).message;
      expect(msg, `cut at ${cut}`).toMatch(new RegExp(`^${f}: not a sentencepiece model \\((protobuf parse failed at byte \\d+|no trainer_spec: truncated\\?|no normalizer_spec: truncated\\?)\\)$`));
    }
    expect(() => parseSentencePieceModel(good.subarray(0, at), 'x.model')).toThrow('x.model: not a sentencepiece model (no trainer_spec: truncated?)');
  });
});
