/**
 * Reader for sentencepiece `.model` files (a serialized `sentencepiece.ModelProto`, proto2).
 *
 * Only the fields a tokenizer needs are decoded; every other field is skipped by wire type.
 * Field numbers follow `sentencepiece_model.proto` (checked against the descriptor shipped in
 * Debian's python3-sentencepiece 0.1.97 and google/sentencepiece's src/sentencepiece_model.proto):
 *
 *   ModelProto      { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2;
 *                     NormalizerSpec normalizer_spec = 3; ... }
 *   SentencePiece   { string piece = 1; float score = 2; Type type = 3 [default NORMAL]; }
 *   TrainerSpec     { model_type = 3 [UNIGRAM]; vocab_size = 4; treat_whitespace_as_suffix = 24;
 *                     byte_fallback = 35;
 *                     unk_id = 40 [0]; bos_id = 41 [1]; eos_id = 42 [2]; pad_id = 43 [-1];
 *                     unk_surface = 44 [" \u2047 "]; unk_piece = 45 ["<unk>"]; bos_piece = 46 ["<s>"];
 *                     eos_piece = 47 ["</s>"]; pad_piece = 48 ["<pad>"]; ... }
 *   NormalizerSpec  { name = 1; precompiled_charsmap = 2; add_dummy_prefix = 3 [true];
 *                     remove_extra_whitespaces = 4 [true]; escape_whitespaces = 5 [true]; }
 */
import { UserError } from '../errors.ts';

/** `ModelProto.SentencePiece.Type`. */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type PieceType = (typeof PieceType)[keyof typeof PieceType];

/** `TrainerSpec.ModelType`. */
export const ModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

export interface SentencePiece {
  piece: string;
  score: number;
  type: PieceType;
}

export interface TrainerSpec {
  modelType: number;
  vocabSize: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  /** The ids the trainer was asked for (the runtime special ids come from the pieces, see `Tokenizer`). */
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
  /** What `<unk>` decodes to. */
  unkSurface: string;
}

export interface NormalizerSpec {
  name: string;
  /** Bytes of the compiled normalisation rules (empty for `identity`). */
  precompiledCharsmapLength: number;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export interface SentencePieceModel {
  pieces: SentencePiece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
  /** `denormalizer_spec` (field 5) is present with compiled rules: sp applies them after decoding. */
  hasDenormalizer: boolean;
}

/** Thrown inside the reader; `parseSentencePieceModel` turns it into a one-line `UserError`. */
class ParseError extends Error {
  constructor(readonly at: number) {
    super(`protobuf parse failed at byte ${at}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A cursor over one protobuf message (`buf[pos, end)`); offsets stay absolute for error messages. */
class Reader {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  varint(): number {
    // Exact up to 2^53 (lengths, tags, enums, bools); int32 fields use int32().
    const start = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ParseError(start);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) return result;
    }
    throw new ParseError(start);
  }

  /** An int32 field: negative values are 10-byte varints (sign-extended to 64 bits); keep the low 32. */
  int32(): number {
    const start = this.pos;
    let v = 0n;
    for (let i = 0n; i < 10n; i++) {
      if (this.pos >= this.end) throw new ParseError(start);
      const b = this.buf[this.pos++]!;
      v |= BigInt(b & 0x7f) << (7n * i);
      if (b < 0x80) return Number(BigInt.asIntN(32, v));
    }
    throw new ParseError(start);
  }

  /** A length-delimited field: returns [start, end) of its payload. */
  bytes(): [number, number] {
    const at = this.pos;
    const len = this.varint();
    if (len > this.end - this.pos) throw new ParseError(at);
    const start = this.pos;
    this.pos += len;
    return [start, this.pos];
  }

  string(): string {
    const at = this.pos;
    const [s, e] = this.bytes();
    try {
      return utf8.decode(this.buf.subarray(s, e));
    } catch {
      throw new ParseError(at);
    }
  }

  float(): number {
    if (this.end - this.pos < 4) throw new ParseError(this.pos);
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  /** Reads the next tag; returns [field, wireType]. */
  tag(): [number, number] {
    const at = this.pos;
    const t = this.varint();
    const field = Math.floor(t / 8);
    const wire = t & 7;
    if (field === 0 || wire === 3 || wire === 4 || wire > 5) throw new ParseError(at);
    return [field, wire];
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.advance(8);
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.advance(4);
  }

  private advance(n: number): void {
    if (this.end - this.pos < n) throw new ParseError(this.pos);
    this.pos += n;
  }

  /** Iterates the fields of this message, calling `on(field, wire)`; `on` must consume the value or return false to skip it. */
  fields(on: (field: number, wire: number, at: number) => boolean): void {
    while (this.pos < this.end) {
      const at = this.pos;
      const [field, wire] = this.tag();
      if (!on(field, wire, at)) this.skip(wire);
    }
  }

  sub(): Reader {
    const [s, e] = this.bytes();
    return new Reader(this.buf, s, e);
  }
}

function expectWire(wire: number, want: number, at: number): void {
  if (wire !== want) throw new ParseError(at);
}

function readPiece(r: Reader): SentencePiece {
  const p: SentencePiece = { piece: '', score: 0, type: PieceType.NORMAL };
  r.fields((field, wire, at) => {
    if (field === 1) {
      expectWire(wire, 2, at);
      p.piece = r.string();
    } else if (field === 2) {
      expectWire(wire, 5, at);
      p.score = r.float();
    } else if (field === 3) {
      expectWire(wire, 0, at);
      const t = r.varint();
      if (t < 1 || t > 6) throw new ParseError(at);
      p.type = t as PieceType;
    } else return false;
    return true;
  });
  return p;
}

type IntKey = 'modelType' | 'vocabSize' | 'unkId' | 'bosId' | 'eosId' | 'padId';
type StringKey = 'unkSurface' | 'unkPiece' | 'bosPiece' | 'eosPiece' | 'padPiece';
const TRAINER_INTS: Record<number, IntKey> = { 3: 'modelType', 4: 'vocabSize', 40: 'unkId', 41: 'bosId', 42: 'eosId', 43: 'padId' };
const TRAINER_STRINGS: Record<number, StringKey> = { 44: 'unkSurface', 45: 'unkPiece', 46: 'bosPiece', 47: 'eosPiece', 48: 'padPiece' };

function readTrainerSpec(r: Reader): TrainerSpec {
  const s: TrainerSpec = {
    modelType: ModelType.UNIGRAM,
    vocabSize: 8000,
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkPiece: '<unk>',
    bosPiece: '<s>',
    eosPiece: '</s>',
    padPiece: '<pad>',
    unkSurface: ' \u2047 ',
  };
  r.fields((field, wire, at) => {
    const int = TRAINER_INTS[field];
    const str = TRAINER_STRINGS[field];
    if (int) {
      expectWire(wire, 0, at);
      s[int] = r.int32();
    } else if (str) {
      expectWire(wire, 2, at);
      s[str] = r.string();
    } else if (field === 35 || field === 24) {
      expectWire(wire, 0, at);
      const on = r.varint() !== 0;
      if (field === 35) s.byteFallback = on;
      else s.treatWhitespaceAsSuffix = on;
    } else return false;
    return true;
  });
  return s;
}

function readNormalizerSpec(r: Reader): NormalizerSpec {
  const s: NormalizerSpec = {
    name: '',
    precompiledCharsmapLength: 0,
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
  r.fields((field, wire, at) => {
    expectWire(wire, field === 1 || field === 2 ? 2 : field <= 5 ? 0 : wire, at);
    if (field === 1) s.name = r.string();
    else if (field === 2) {
      const [b, e] = r.bytes();
      s.precompiledCharsmapLength = e - b;
    } else if (field === 3) s.addDummyPrefix = r.varint() !== 0;
    else if (field === 4) s.removeExtraWhitespaces = r.varint() !== 0;
    else if (field === 5) s.escapeWhitespaces = r.varint() !== 0;
    else return false;
    return true;
  });
  return s;
}

/**
 * Parses a sentencepiece `.model` file. `file` names it in errors. Throws a one-line `UserError`
 * (`<file>: not a sentencepiece model (...)`) on anything that is not a well-formed model:
 * malformed or truncated protobuf, no pieces, an empty piece.
 */
export function parseSentencePieceModel(bytes: Uint8Array, file: string): SentencePieceModel {
  const fail = (why: string): never => {
    throw new UserError(`${file}: not a sentencepiece model (${why})`);
  };
  if (bytes.length === 0) fail('empty file');
  const pieces: SentencePiece[] = [];
  const spec: { trainer?: Reader; normalizer?: Reader; denormalizer?: Reader } = {};
  try {
    const r = new Reader(bytes, 0, bytes.length);
    r.fields((field, wire, at) => {
      if (field >= 1 && field <= 5) expectWire(wire, 2, at);
      if (field === 1) pieces.push(readPiece(r.sub()));
      else if (field === 2) spec.trainer = r.sub();
      else if (field === 3) spec.normalizer = r.sub();
      else if (field === 5) spec.denormalizer = r.sub();
      else return false;
      return true;
    });
    if (pieces.length === 0) fail('no pieces');
    // spm_train always writes both specs after the pieces: a file cut short between fields lacks them.
    if (!spec.trainer) return fail('no trainer_spec: truncated?');
    if (!spec.normalizer) return fail('no normalizer_spec: truncated?');
    const trainerSpec = readTrainerSpec(spec.trainer);
    const normalizerSpec = readNormalizerSpec(spec.normalizer);
    const hasDenormalizer = spec.denormalizer ? readNormalizerSpec(spec.denormalizer).precompiledCharsmapLength > 0 : false;
    const empty = pieces.findIndex((p) => p.piece === '');
    if (empty >= 0) fail(`piece ${empty} is empty`);
    return { pieces, trainerSpec, normalizerSpec, hasDenormalizer };
  } catch (e) {
    if (e instanceof ParseError) return fail(e.message);
    throw e;
  }
}
