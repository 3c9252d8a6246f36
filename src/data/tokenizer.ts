/**
 * The LLaMA tokenizer: a sentencepiece `tokenizer.model`.
 *
 * Encoding runs the real sentencepiece (compiled to wasm, npm `sentencepiece-js`), so ids are
 * exactly `spm_encode`'s. That package is thin, so this module completes it:
 * - vocab size, pieces, piece types and special ids come from reading the `.model` protobuf
 *   ourselves (`sentencepiece-model.ts`), computed the way `SentencePieceProcessor` does;
 * - a bad, truncated or missing file is a one-line `UserError` naming the file (the package would
 *   silently return `[]` for every encode); the wasm `Load` status is checked too;
 * - decoding (and the streaming decoder) is done here, following sentencepiece's `Decode` rules
 *   exactly: byte pieces are reassembled into UTF-8 (each invalid byte becomes U+FFFD), control
 *   tokens vanish, `<unk>` becomes " ⁇ ", "▁" becomes a space and the first leading space (the
 *   dummy prefix) is dropped;
 * - the package's wasm heap grows to fit the longest string ever encoded and never shrinks
 *   (~75 bytes per input byte): long inputs are encoded in newline-delimited chunks where that is
 *   provably exact for the model (see `newlineSplit`), else whole.
 * Never use the package's `cleanText()`: it lowercases and collapses whitespace.
 *
 * The wasm runtime is instantiated once per process (asynchronously: the package offers no sync
 * way), and every `Tokenizer` loads its model into that one instance (several models at once are
 * fine). After one `await Tokenizer.load()` or `await Tokenizer.init()`, `Tokenizer.loadSync()`
 * works.
 *
 * BOS/EOS: `encode()` returns plain sentencepiece ids; LLaMA prepends BOS (HF `LlamaTokenizer`:
 * `[BOS] + sp.encode(text)`), which callers ask for with `encode(text, { bos: true })`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import { ModelType, PieceType, parseSentencePieceModel, type SentencePieceModel } from './sentencepiece-model.ts';

// ---- the wasm module of sentencepiece-js (no type declarations ship with it) ----

interface SpDeletable {
  delete(): void;
}
interface SpStringView extends SpDeletable {
  getView(): SpDeletable;
}
interface SpVector extends SpDeletable {
  size(): number;
  get(i: number): number;
}
interface SpStatus extends SpDeletable {
  ToString(): string;
}
interface SpProcessor extends SpDeletable {
  Load(path: SpDeletable): SpStatus;
  EncodeAsIds(text: SpDeletable): SpVector;
  DecodeIds(ids: SpVector): string;
}
interface SpModule {
  FS: { writeFile(name: string, data: Uint8Array): void; unlink(name: string): void };
  StringView: new (s: string) => SpStringView;
  SentencePieceProcessor: new () => SpProcessor;
  vecFromJSArray(ids: number[]): SpVector;
  HEAP8: Int8Array;
}
interface SpWrapper {
  load(path: string): Promise<void>;
  sentencepiece: SpModule;
  processor: SpProcessor;
}

const require = createRequire(import.meta.url);

let wasm: SpModule | undefined;
let wasmPromise: Promise<SpModule> | undefined;
let modelFileCounter = 0;

async function instantiateWasm(): Promise<SpModule> {
  // The emscripten runtime installs process-wide 'uncaughtException' / 'unhandledRejection'
  // handlers that rethrow, so Node prints the package's whole minified source (megabytes) for any
  // later uncaught error of ours. Keep only the handlers that were there before it loaded.
  const before = {
    uncaughtException: process.listeners('uncaughtException'),
    unhandledRejection: process.listeners('unhandledRejection'),
  };
  try {
    return await instantiateWasmRaw();
  } finally {
    for (const l of process.listeners('uncaughtException')) if (!before.uncaughtException.includes(l)) process.removeListener('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection')) if (!before.unhandledRejection.includes(l)) process.removeListener('unhandledRejection', l);
  }
}

async function instantiateWasmRaw(): Promise<SpModule> {
  const { SentencePieceProcessor } = require('sentencepiece-js') as { SentencePieceProcessor: new () => SpWrapper };
  const wrapper = new SentencePieceProcessor();
  // The wrapper's only way to instantiate its wasm is `load(path)`, which reads the file into the
  // wasm's in-memory FS and ignores the load status. Hand it this source file (it fails to parse,
  // silently), keep the module, and load real models from bytes ourselves (`loadSync`).
  await wrapper.load(fileURLToPath(import.meta.url));
  const m = wrapper.sentencepiece;
  wrapper.processor.delete();
  m.FS.unlink('sentencepiece.model');
  return m;
}

function withView<T>(m: SpModule, s: string, f: (view: SpDeletable) => T): T {
  const sv = new m.StringView(s);
  const view = sv.getView();
  try {
    return f(view);
  } finally {
    view.delete();
    sv.delete();
  }
}

/** Lone UTF-16 surrogates become U+FFFD (as TextEncoder does): Emscripten's UTF-8 encoder would
 * pair a lone high surrogate with the next character and swallow it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const ANY_SURROGATE = /[\uD800-\uDFFF]/;

/** Default chunk size for long inputs (see `encode`): ~2.5 MB of wasm heap; also faster than
 * encoding megabytes in one call (sentencepiece's per-call work grows worse than linearly). */
export const DEFAULT_ENCODE_CHUNK_CHARS = 32_768;

export interface EncodeOptions {
  /** Prepend `bosId` (LLaMA does, for every sequence). Default false. */
  bos?: boolean;
  /** Append `eosId`. Default false. */
  eos?: boolean;
  /** Inputs longer than this many UTF-16 units are encoded in pieces cut after a '\n' where the
   * model makes that exact (the result is identical); `Infinity` encodes in one call. */
  chunkChars?: number;
}

export interface StreamDecoder {
  /** Appends `id`; returns the text it completes (possibly '': an unfinished UTF-8 byte sequence waits). */
  push(id: number): string;
  /** Ends the stream: an unfinished byte sequence becomes U+FFFD per byte, as `decode` does. */
  flush(): string;
}

const SPACE_SYMBOL = '\u2581'; // ▁
const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;

export class Tokenizer {
  readonly path: string;
  /** Number of pieces (sentencepiece's `GetPieceSize()`), i.e. the embedding rows a model needs. */
  readonly vocabSize: number;
  /** Special ids as sentencepiece reports them: -1 where the model has none. */
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly padId: number;
  /** Everything read from the `.model` file. */
  readonly model: SentencePieceModel;

  private readonly proc: SpProcessor;
  private readonly m: SpModule;
  private readonly ids: Map<string, number>;
  private readonly types: Uint8Array;
  /** Byte value of BYTE pieces, -1 for others. */
  private readonly byteOf: Int16Array;
  /** The decoded text of each piece ("▁" → " ") and the same without one leading space. */
  private readonly surface: string[];
  private readonly surfaceNoLead: (string | null)[];
  private readonly stripLeadingSpace: boolean;
  /** Ids of '\n' alone when splitting long inputs after newlines is exact, else null. */
  private readonly newlineIds: number[] | null;

  private constructor(path: string, model: SentencePieceModel, m: SpModule, proc: SpProcessor) {
    this.path = path;
    this.model = model;
    this.m = m;
    this.proc = proc;
    const n = model.pieces.length;
    this.vocabSize = n;
    this.ids = new Map();
    this.types = new Uint8Array(n);
    this.byteOf = new Int16Array(n).fill(-1);
    this.surface = new Array<string>(n);
    this.surfaceNoLead = new Array<string | null>(n);
    model.pieces.forEach((p, id) => {
      if (!this.ids.has(p.piece)) this.ids.set(p.piece, id);
      this.types[id] = p.type;
      const byte = p.type === PieceType.BYTE ? BYTE_PIECE.exec(p.piece) : null;
      if (byte) this.byteOf[id] = parseInt(byte[1]!, 16);
      this.surface[id] = p.piece.replaceAll(SPACE_SYMBOL, ' ');
      this.surfaceNoLead[id] = p.piece.startsWith(SPACE_SYMBOL) ? this.surface[id]!.slice(1) : null;
    });
    const ts = model.trainerSpec;
    const ns = model.normalizerSpec;
    // As SentencePieceProcessor::unk_id() etc.: the id of the named piece if it has the right type.
    const special = (piece: string, type: number): number => {
      const id = this.ids.get(piece);
      return id !== undefined && this.types[id] === type ? id : -1;
    };
    this.unkId = special(ts.unkPiece, PieceType.UNKNOWN);
    this.bosId = special(ts.bosPiece, PieceType.CONTROL);
    this.eosId = special(ts.eosPiece, PieceType.CONTROL);
    this.padId = special(ts.padPiece, PieceType.CONTROL);
    this.stripLeadingSpace = ns.addDummyPrefix || ns.removeExtraWhitespaces;

    // Splitting "A\nB" into "A\n" and "B" is exact when no piece can span a '\n' (no piece
    // contains one, and the normaliser leaves '\n' alone: identity rules, no whitespace
    // collapsing), '\n' always becomes byte pieces (byte fallback), and BPE merges never cross a
    // symbol that cannot merge. The dummy prefix only goes in front of the whole text, so every
    // chunk after the first is encoded as "\n" + chunk and the ids of "\n" alone are dropped.
    const newlineSafe =
      ts.modelType === ModelType.BPE &&
      ts.byteFallback &&
      !ts.treatWhitespaceAsSuffix &&
      ns.precompiledCharsmapLength === 0 &&
      !ns.removeExtraWhitespaces &&
      !model.pieces.some((p) => p.type !== PieceType.BYTE && p.piece.includes('\n'));
    this.newlineIds = newlineSafe ? this.encodeRaw('\n') : null;
  }

  /** Instantiates the sentencepiece wasm runtime (once per process; ~20 ms). */
  static async init(): Promise<void> {
    wasmPromise ??= instantiateWasm().catch((e: unknown) => {
      wasmPromise = undefined; // let a later call retry
      throw e;
    });
    wasm = await wasmPromise;
  }

  /** Loads a sentencepiece `tokenizer.model`. Throws `UserError` naming the file if it is missing or not a model. */
  static async load(modelPath: string): Promise<Tokenizer> {
    await Tokenizer.init();
    return Tokenizer.loadSync(modelPath);
  }

  /** `load` without the await; needs the wasm runtime, i.e. one earlier `await Tokenizer.init()` or `load()`. */
  static loadSync(modelPath: string): Tokenizer {
    if (!wasm) {
      throw new Error('Tokenizer.loadSync: the sentencepiece wasm runtime is not ready: await Tokenizer.init() (or Tokenizer.load()) once first');
    }
    let bytes: Buffer;
    try {
      bytes = readFileSync(modelPath);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a tokenizer.model' : `cannot read (${(e as Error).message})`;
      throw new UserError(`${modelPath}: ${why}`);
    }
    const model = parseSentencePieceModel(bytes, modelPath);
    const m = wasm;
    const name = `tokenizer-${++modelFileCounter}.model`;
    m.FS.writeFile(name, bytes);
    const proc = new m.SentencePieceProcessor();
    let status: string;
    try {
      status = withView(m, name, (view) => {
        const s = proc.Load(view);
        try {
          return s.ToString();
        } finally {
          s.delete();
        }
      });
    } catch (e) {
      status = `wasm error: ${(e as Error).message}`;
    } finally {
      m.FS.unlink(name);
    }
    if (status !== 'OK') {
      proc.delete();
      throw new UserError(`${modelPath}: sentencepiece cannot load it (${status.replace(/\s+/g, ' ').trim()})`);
    }
    return new Tokenizer(modelPath, model, m, proc);
  }

  /** Bytes of the shared wasm heap (it grows with the longest string encoded and never shrinks); 0 before init. */
  static wasmHeapBytes(): number {
    return wasm ? wasm.HEAP8.length : 0;
  }

  /** Frees the wasm-side processor; the tokenizer is unusable afterwards. */
  dispose(): void {
    this.proc.delete();
  }

  /** Sentencepiece ids of `text` (exactly `spm_encode`'s); BOS/EOS only when asked for. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    for (const ids of this.encodeParts(text, opts)) appendAll(out, ids);
    return out;
  }

  /**
   * `encode`, giving the event loop a turn (`setImmediate`) after each chunk of a long input, so
   * that a server stays responsive while it tokenises a long prompt (the result is identical). An
   * input the model cannot split exactly (see `newlineSplit`), or a single line longer than
   * `chunkChars`, is still one uninterrupted call: callers bound the length first where it matters.
   */
  async encodeAsync(text: string, opts: EncodeOptions = {}): Promise<number[]> {
    const out: number[] = [];
    for (const ids of this.encodeParts(text, opts)) {
      appendAll(out, ids);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return out;
  }

  /** The ids of `encode`, in parts: BOS, each chunk of the text (see `encode`), EOS. */
  private *encodeParts(text: string, opts: EncodeOptions): Generator<number[]> {
    if (ANY_SURROGATE.test(text)) text = text.replace(LONE_SURROGATE, '\uFFFD');
    const chunkChars = opts.chunkChars ?? DEFAULT_ENCODE_CHUNK_CHARS;
    if (opts.bos) yield [this.requireSpecial(this.bosId, 'bos')];
    if (text.length <= chunkChars || !this.newlineIds) {
      yield this.encodeRaw(text);
    } else {
      yield* this.encodeChunked(text, chunkChars);
    }
    if (opts.eos) yield [this.requireSpecial(this.eosId, 'eos')];
  }

  /**
   * The text of `ids`, exactly as sentencepiece's `DecodeIds`. Throws RangeError on an id outside
   * the vocabulary. (Models with a denormalizer, none of the LLaMA family, decode through the wasm.)
   */
  decode(ids: readonly number[]): string {
    if (this.model.hasDenormalizer) return this.decodeWasm(ids);
    const d = this.createStreamDecoder();
    let s = '';
    for (const id of ids) s += d.push(id);
    return s + d.flush();
  }

  /** The piece of `id` (e.g. "▁Hello", "<0x0A>", "<s>"). */
  idToPiece(id: number): string {
    this.checkId(id);
    return this.model.pieces[id]!.piece;
  }

  /**
   * The bytes `id` stands for inside a text, as the stream decoder writes them: a piece's text with
   * "▁" as a space (UTF-8), a byte piece's one byte, nothing for a control piece (logprobs' `bytes`).
   */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id);
    const byte = this.byteOf[id]!;
    if (byte >= 0) return Uint8Array.of(byte);
    const type = this.types[id]!;
    if (type === PieceType.CONTROL) return new Uint8Array(0);
    return new TextEncoder().encode(type === PieceType.UNKNOWN ? this.model.trainerSpec.unkSurface : this.surface[id]!);
  }

  /** The id of `piece`, or `unkId` if there is no such piece (as sentencepiece's `PieceToId`). */
  pieceToId(piece: string): number {
    return this.ids.get(piece) ?? this.unkId;
  }

  /**
   * Incremental `decode` for printing tokens as they are generated: the concatenation of every
   * `push(id)` and the final `flush()` equals `decode(allIds)`. Byte-fallback sequences are held
   * until they form a character; the leading dummy-prefix space of the stream is dropped (make a
   * new decoder where a new `decode` would start). Ignores a model's denormalizer, if any.
   */
  createStreamDecoder(): StreamDecoder {
    const pending: number[] = [];
    let emitted = false; // sentencepiece's `!text->empty()`
    let isBosWs = true; // may the next piece's leading "▁" still be the dummy prefix?
    let bosWsSeen = false;
    const drain = (final: boolean): string => {
      const [s, used] = decodeUtf8Bytes(pending, final);
      pending.splice(0, used);
      if (s) emitted = true;
      return s;
    };
    return {
      push: (id: number): string => {
        this.checkId(id);
        const byte = this.byteOf[id]!;
        if (byte >= 0) {
          pending.push(byte);
          return drain(false);
        }
        const s = drain(true);
        if (bosWsSeen || emitted) isBosWs = false;
        const type = this.types[id]!;
        let piece: string;
        bosWsSeen = false;
        if (type === PieceType.CONTROL) piece = '';
        else if (type === PieceType.UNKNOWN) piece = this.model.trainerSpec.unkSurface;
        else if (isBosWs && this.stripLeadingSpace && this.surfaceNoLead[id] !== null) {
          piece = this.surfaceNoLead[id]!;
          bosWsSeen = !this.model.normalizerSpec.removeExtraWhitespaces;
        } else piece = this.surface[id]!;
        if (piece) emitted = true;
        return s + piece;
      },
      flush: (): string => drain(true),
    };
  }

  // ---- internals ----

  private requireSpecial(id: number, name: string): number {
    if (id < 0) throw new UserError(`${this.path}: the tokenizer has no ${name} token`);
    return id;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id} is outside the vocabulary of ${this.path} (0..${this.vocabSize - 1})`);
    }
  }

  /** One call into the wasm (heap grows to fit `text`). */
  private encodeRaw(text: string): number[] {
    if (text === '') return [];
    return withView(this.m, text, (view) => {
      const v = this.proc.EncodeAsIds(view);
      try {
        const n = v.size();
        const out = new Array<number>(n);
        for (let i = 0; i < n; i++) out[i] = v.get(i);
        return out;
      } finally {
        v.delete();
      }
    });
  }

  private *encodeChunked(text: string, chunkChars: number): Generator<number[]> {
    const nl = this.newlineIds!;
    let start = 0;
    while (start < text.length) {
      let end = text.length;
      if (text.length - start > chunkChars) {
        // Cut after the last '\n' within the budget, else after the first one beyond it.
        const back = text.lastIndexOf('\n', start + chunkChars - 1);
        const cut = back >= start ? back : text.indexOf('\n', start + chunkChars);
        if (cut >= 0) end = cut + 1;
      }
      if (start === 0) {
        yield this.encodeRaw(text.slice(0, end));
      } else {
        const ids = this.encodeRaw('\n' + text.slice(start, end));
        for (let i = 0; i < nl.length; i++) {
          if (ids[i] !== nl[i]) throw new Error(`Tokenizer: newline split not exact for ${this.path} (internal error)`);
        }
        yield ids.slice(nl.length);
      }
      start = end;
    }
  }

  private decodeWasm(ids: readonly number[]): string {
    for (const id of ids) this.checkId(id);
    const v = this.m.vecFromJSArray([...ids]);
    try {
      return this.proc.DecodeIds(v);
    } finally {
      v.delete();
    }
  }
}

function appendAll(out: number[], xs: readonly number[]): void {
  for (const x of xs) out.push(x); // not push(...xs): a long spread overflows the stack
}

const isTrail = (b: number | undefined): boolean => b !== undefined && (b & 0xc0) === 0x80;

/**
 * Decodes bytes as sentencepiece does for a run of byte pieces (string_util::DecodeUTF8): each
 * well-formed character (no overlongs, surrogates or code points above U+10FFFF) is kept; any
 * other byte becomes U+FFFD on its own. With `final` false, a sequence that may still complete is
 * left for later. Returns the text and the number of bytes used.
 */
function decodeUtf8Bytes(b: readonly number[], final: boolean): [string, number] {
  let s = '';
  let i = 0;
  while (i < b.length) {
    const b0 = b[i]!;
    const need = b0 < 0x80 ? 1 : (b0 & 0xe0) === 0xc0 ? 2 : (b0 & 0xf0) === 0xe0 ? 3 : (b0 & 0xf8) === 0xf0 ? 4 : 0;
    if (need === 1) {
      s += String.fromCharCode(b0);
      i += 1;
      continue;
    }
    if (need > 0 && b.length - i < need) {
      // Incomplete: wait if everything so far is a possible prefix, unless the run is over.
      let prefixOk = true;
      for (let j = i + 1; j < b.length; j++) prefixOk &&= isTrail(b[j]);
      if (!final && prefixOk) break;
      s += '\uFFFD';
      i += 1;
      continue;
    }
    let cp = -1;
    if (need === 2 && isTrail(b[i + 1])) {
      cp = ((b0 & 0x1f) << 6) | (b[i + 1]! & 0x3f);
      if (cp < 0x80) cp = -1;
    } else if (need === 3 && isTrail(b[i + 1]) && isTrail(b[i + 2])) {
      cp = ((b0 & 0x0f) << 12) | ((b[i + 1]! & 0x3f) << 6) | (b[i + 2]! & 0x3f);
      if (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000)) cp = -1;
    } else if (need === 4 && isTrail(b[i + 1]) && isTrail(b[i + 2]) && isTrail(b[i + 3])) {
      cp = ((b0 & 0x07) << 18) | ((b[i + 1]! & 0x3f) << 12) | ((b[i + 2]! & 0x3f) << 6) | (b[i + 3]! & 0x3f);
      if (cp < 0x10000 || cp > 0x10ffff) cp = -1;
    }
    if (cp < 0) {
      s += '\uFFFD';
      i += 1;
    } else {
      s += String.fromCodePoint(cp);
      i += need;
    }
  }
  return [s, i];
}
