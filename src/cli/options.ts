/**
 * The option builders shared by every `wgpu-char` command: integers and numbers with a range,
 * a fixed set of choices (--dtype among them), repeatable strings, and the sampling options of
 * chat and generate.
 *
 * A bad value throws a UserError `<option>: must be <accepted values> (got "<value>")` from inside
 * commander's parsing (commander only rewraps its own InvalidArgumentError), so src/cli/main.ts
 * prints it as one line and exits 1, like any other user error.
 */
import { type Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { loadLlamaConfig } from '../formats/hf-config.ts';
import { checkMaxNewTokens, resolveContext } from '../gen/context.ts';

/** Bounds of a numeric option; `min` is inclusive unless `minExclusive`, `max` is inclusive. */
export interface Range {
  min?: number;
  max?: number;
  minExclusive?: boolean;
}

/** "≥ 1", "> 0", "≤ 2", "in [0, 1]", "in (0, 1]" or "" (any). */
function describeRange({ min, max, minExclusive = false }: Range): string {
  if (min !== undefined && max !== undefined) return `in ${minExclusive ? '(' : '['}${min}, ${max}]`;
  if (min !== undefined) return `${minExclusive ? '>' : '≥'} ${min}`;
  if (max !== undefined) return `≤ ${max}`;
  return '';
}

function inRange(n: number, { min, max, minExclusive = false }: Range): boolean {
  if (min !== undefined && (n < min || (minExclusive && n === min))) return false;
  return max === undefined || n <= max;
}

function badValue(flag: string, accepted: string, value: string): UserError {
  // JSON quoting keeps a value with quotes or line breaks on the one line.
  return new UserError(`${flag}: must be ${accepted} (got ${JSON.stringify(value)})`);
}

/** Parser of an integer option (a safe integer: larger ones would not round-trip). */
export function parseInteger(flag: string, range: Range = {}): (value: string) => number {
  const accepted = `an integer ${describeRange(range)}`.trimEnd();
  return (value) => {
    const n = Number(value);
    // Number('') and Number(' ') are 0: an empty value is not a number.
    if (value.trim() === '' || !Number.isSafeInteger(n) || !inRange(n, range)) throw badValue(flag, accepted, value);
    return n;
  };
}

/** Parser of a finite number option. */
export function parseNumber(flag: string, range: Range = {}): (value: string) => number {
  const accepted = `a number ${describeRange(range)}`.trimEnd();
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || !inRange(n, range)) throw badValue(flag, accepted, value);
    return n;
  };
}

const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/**
 * Parser of a size in bytes: a number with an optional unit, `24GB` (10⁹, as a card's box says),
 * `24GiB` or `24G` (2³⁰), `512MiB`, or plain bytes.
 */
export function parseBytes(flag: string): (value: string) => number {
  return (value) => {
    const m = /^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$/.exec(value);
    const unit = m ? BYTE_UNITS[(m[2] || 'b').toLowerCase()] : undefined;
    if (!m || unit === undefined || !(Number(m[1]) > 0)) throw badValue(flag, 'a size such as 24GB, 24GiB, 512MiB or a number of bytes', value);
    return Math.round(Number(m[1]) * unit);
  };
}

/** --adapter DIR of the commands that run a model (chat, generate, eval, serve). */
export function adapterOption(): Option {
  return new Option('--adapter <dir>', 'a LoRA adapter in PEFT\'s format (adapter_config.json + adapter_model.safetensors) applied on top of --model');
}

/** `flags` is commander's syntax, e.g. '--max-len <n>'; the error messages name its long flag. */
function optionWithParser(flags: string, description: string, parser: (flag: string) => (value: string) => unknown, defaultValue?: unknown): Option {
  const option = new Option(flags, description);
  if (option.long === undefined) throw new Error(`option ${flags} needs a long flag`);
  option.argParser(parser(option.long));
  if (defaultValue !== undefined) option.default(defaultValue);
  return option;
}

export function integerOption(flags: string, description: string, range: Range = {}, defaultValue?: number): Option {
  return optionWithParser(flags, description, (flag) => parseInteger(flag, range), defaultValue);
}

export function numberOption(flags: string, description: string, range: Range = {}, defaultValue?: number): Option {
  return optionWithParser(flags, description, (flag) => parseNumber(flag, range), defaultValue);
}

/** An option taking one of `choices`; the help lists them, as commander's own `.choices()`. */
export function choiceOption<T extends string>(flags: string, description: string, choices: readonly T[], defaultValue: T): Option {
  const option = new Option(flags, description).choices(choices).default(defaultValue);
  // .choices() also installs commander's parser, whose error is a multi-line usage message: ours replaces it.
  const flag = option.long!;
  return option.argParser((value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw badValue(flag, `one of ${choices.join(', ')}`, value);
    return value as T;
  });
}

export type Dtype = 'bf16' | 'f32';

/** `--dtype bf16|f32`: how the model's weights are stored on the GPU. Train describes its own use. */
export function dtypeOption(description = 'weights on the GPU: bf16 (default, f32 accumulate) or f32 (exact)'): Option {
  return choiceOption<Dtype>('--dtype <dtype>', description, ['bf16', 'f32'], 'bf16');
}

/** An option that may be repeated; its value is every occurrence in order. */
export function repeatedStringOption(flags: string, description: string): Option {
  return new Option(flags, description).argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
}

/** `--context <n>`, for the commands that decode with a KV cache (chat, generate, serve). */
export function contextOption(): Option {
  return integerOption('--context <n>', 'context length in tokens (default: the model\'s max_position_embeddings)', { min: 2 });
}

/** serve's --max-batch (KV-cache slots), also what `plan` plans serving with. */
export function maxBatchOption(): Option {
  return integerOption('--max-batch <s>', 'generations decoded at once (KV-cache slots); more wait in the queue', { min: 1, max: 4096 }, 16);
}

/** serve's --prefill-chunk, also what `plan` plans serving with. */
export function prefillChunkOption(): Option {
  return integerOption('--prefill-chunk <n>', 'prompt tokens prefilled per step, between the decode steps of the running generations', { min: 1 }, 256);
}

/** The options `chat` and `generate` sample with (both also take --context and --dtype); the defaults differ per command. */
export interface SamplingOptions {
  temperature: number;
  topP: number;
  repetitionPenalty: number;
  maxNewTokens: number;
  seed: number;
  context?: number;
  dtype: Dtype;
}

export function addSamplingOptions(cmd: Command, defaults: { temperature: number; maxNewTokens: number }): Command {
  return cmd
    .addOption(numberOption('--temperature <t>', 'sampling temperature (< 1e-5 = greedy)', { min: 0, max: 2 }, defaults.temperature))
    .addOption(numberOption('--top-p <p>', 'nucleus sampling mass (1 = off, 0 = greedy: the most likely token)', { min: 0, max: 1 }, 0.95))
    .addOption(numberOption('--repetition-penalty <r>', 'HF/FastChat repetition penalty on every context token (1 = off; 1.1-1.3 curbs loops)', { min: 0.01, max: 10 }, 1))
    .addOption(integerOption('--max-new-tokens <n>', 'tokens to generate at most', { min: 1 }, defaults.maxNewTokens))
    .addOption(integerOption('--seed <n>', 'random seed of the sampler', { min: 0 }, 42))
    .addOption(contextOption())
    .addOption(dtypeOption());
}

/**
 * The context chat and generate decode in, from --context and the model's config.json (read, not
 * loaded: no GPU code), and --max-new-tokens checked against it: a one-line UserError before
 * anything starts. A --context above the model's maximum is said once and lowered.
 */
export function checkDecodeSettings(opts: { model: string; context?: number; maxNewTokens: number }): number {
  if (!existsSync(opts.model)) throw new UserError(`${opts.model}: no such model directory`);
  const maxPositions = loadLlamaConfig(opts.model).max_position_embeddings;
  const context = resolveContext(opts.context, maxPositions);
  checkMaxNewTokens(opts.maxNewTokens, context, maxPositions);
  return context;
}
