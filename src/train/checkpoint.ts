/**
 * Training checkpoints: OUT/checkpoint-<step>/, an HF model directory plus what a bit-exact resume
 * needs.
 *
 *   config.json, model.safetensors    the weights in the run's dtype (saveLlamaCheckpointCpu), loadable
 *                                     by `wgpu-char chat/eval` and transformers
 *   tokenizer.model (+ tokenizer_config.json, special_tokens_map.json, generation_config.json when
 *                                     the model dir has them), copied from --model
 *   optimizer.safetensors             F32: the engine's exportOptimizerState() entries as named by it,
 *                                     which must include the f32 master weights as `master.<HF name>`
 *                                     (added here from exportWeights() when the engine leaves them
 *                                     out): a resume restores everything from this file, never from
 *                                     model.safetensors (rounded to bf16 in bf16 runs)
 *   trainer_state.json                step, epoch, position in the epoch, that epoch's data order, the
 *                                     order RNG's state, log history, args, data fingerprint
 *                                     (`TrainerState` in state.ts)
 *   loss.svg                          the curves so far
 *
 * Never half-written: the directory is built as `<dir>.<pid>.tmp`, every file fsynced, then
 * renamed to its final name (an existing checkpoint of the same name is moved aside first and
 * removed after), and the parent directory fsynced. A crash leaves at most a `*.tmp` directory,
 * which no reader takes for a checkpoint and `removeStaleTemps` deletes once its process is gone.
 */
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import type { LlamaConfig } from '../model/config.ts';
import { loadLlamaWeightsCpu, saveLlamaCheckpointCpu } from '../formats/hf-checkpoint.ts';
import { ADAPTER_WEIGHTS, writePeftAdapter } from '../formats/peft.ts';
import { adapterNames, loraScale, mergeLora, type LoraConfig } from '../model/lora.ts';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../formats/safetensors.ts';
import { asDiskFull, DiskFullError, tempPathFor, writeFileAtomic } from '../util/atomic.ts';
import { MASTER_PREFIX, type TensorMapF32 } from './engine.ts';
import { STATE_FORMAT, STATE_VERSION, type TrainerState } from './state.ts';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const LOSS_SVG_FILE = 'loss.svg';
/** Copied from the model directory into every checkpoint and the final model; only the first is required. */
export const TOKENIZER_FILES = ['tokenizer.model', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];
export interface CheckpointContents {
  cfg: LlamaConfig;
  dtype: 'bf16' | 'f32';
  /** f32 master weights (engine.exportWeights()). */
  weights: TensorMapF32;
  /** engine.exportOptimizerState(). */
  optimizer: TensorMapF32;
  /** Directory with tokenizer.model (the --model dir). */
  tokenizerDir: string;
  /** LoRA: `weights` are the adapter's tensors, written as PEFT's adapter files instead of a model. */
  adapter?: AdapterOutput;
  state: TrainerState;
  lossSvg: string;
}

export interface CheckpointHooks {
  /** Called with the temp directory when every file is written, just before the rename (tests simulate a crash here). */
  beforeCommit?: (tmpDir: string) => void | Promise<void>;
}

/** fsync a directory (its entries: renames into it), where the platform allows it. */
function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // not supported (e.g. Windows): the renames are still atomic, just not yet durable
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

function copyFileDurable(src: string, dst: string): void {
  copyFileSync(src, dst);
  const fd = openSync(dst, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Copies tokenizer.model (required) and the optional tokenizer/generation json files from `fromDir` into `toDir`. */
export function copyTokenizerFiles(fromDir: string, toDir: string, atomic: boolean): void {
  for (const name of TOKENIZER_FILES) {
    const src = path.join(fromDir, name);
    if (!existsSync(src)) {
      if (name === TOKENIZER_FILES[0]) throw new UserError(`${src}: missing (checkpoints copy the tokenizer of the model directory)`);
      continue;
    }
    if (path.resolve(src) === path.resolve(toDir, name)) continue;
    if (atomic) writeFileAtomic(path.join(toDir, name), readFileSync(src));
    else copyFileDurable(src, path.join(toDir, name));
  }
}

function optimizerTensors(c: CheckpointContents): TensorToWrite[] {
  const out: TensorToWrite[] = [];
  for (const [name, t] of c.optimizer) out.push({ name, dtype: 'F32', shape: t.shape, data: t.data });
  const engineHasMasters = [...c.optimizer.keys()].some((k) => k.startsWith(MASTER_PREFIX));
  if (!engineHasMasters) {
    for (const [name, t] of c.weights) out.push({ name: MASTER_PREFIX + name, dtype: 'F32', shape: t.shape, data: t.data });
  }
  return out;
}

/** Writes checkpoint directory `dir` atomically (see the header). */
export async function writeCheckpoint(dir: string, c: CheckpointContents, hooks: CheckpointHooks = {}): Promise<void> {
  const finalDir = path.resolve(dir);
  const parent = path.dirname(finalDir);
  // A full disk is reported with the file's name in `dir` (as given), never the temp directory's.
  let writing = dir;
  try {
    mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw asDiskFull(e, dir);
  }
  const tmp = tempPathFor(finalDir);
  rmSync(tmp, { recursive: true, force: true });
  try {
    mkdirSync(tmp);
    writing = path.join(dir, c.adapter ? ADAPTER_WEIGHTS : 'model.safetensors');
    if (c.adapter) await writePeftAdapter(tmp, c.adapter.config, c.adapter.baseModel, c.weights);
    else await saveLlamaCheckpointCpu(tmp, c.cfg, c.weights, c.dtype);
    writing = path.join(dir, TOKENIZER_FILES[0]);
    copyTokenizerFiles(c.tokenizerDir, tmp, false);
    writing = path.join(dir, OPTIMIZER_FILE);
    await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), optimizerTensors(c), { content: 'wgpu-char optimizer state' });
    writing = path.join(dir, LOSS_SVG_FILE);
    writeFileAtomic(path.join(tmp, LOSS_SVG_FILE), c.lossSvg);
    writing = path.join(dir, TRAINER_STATE_FILE);
    writeFileAtomic(path.join(tmp, TRAINER_STATE_FILE), JSON.stringify(c.state, null, 1) + '\n');
    writing = dir;
    fsyncDir(tmp);
    await hooks.beforeCommit?.(tmp);
    let aside: string | null = null;
    if (existsSync(finalDir)) {
      aside = `${finalDir}.${process.pid}.old`;
      rmSync(aside, { recursive: true, force: true });
      renameSync(finalDir, aside);
    }
    renameSync(tmp, finalDir);
    fsyncDir(parent);
    if (aside) rmSync(aside, { recursive: true, force: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    // measured after the partial checkpoint is removed: the space there is to work with
    const named = e instanceof DiskFullError && e.file.startsWith(tmp + path.sep) ? path.join(dir, path.relative(tmp, e.file)) : writing;
    throw asDiskFull(e, named);
  }
}

export interface LoadedCheckpoint {
  dir: string;
  state: TrainerState;
  /** optimizer.safetensors: the engine's entries, `master.*` (the f32 master weights) among them. */
  optimizer: TensorMapF32;
}

const CKPT_RE = /^checkpoint-(\d+)$/;

/** Complete checkpoints directly under `out` (those with a trainer_state.json), by step ascending. */
export function listCheckpoints(out: string): { dir: string; step: number }[] {
  if (!existsSync(out)) return [];
  const found: { dir: string; step: number }[] = [];
  for (const name of readdirSync(out)) {
    const m = CKPT_RE.exec(name);
    if (!m) continue;
    const dir = path.join(out, name);
    if (existsSync(path.join(dir, TRAINER_STATE_FILE))) found.push({ dir, step: Number(m[1]) });
  }
  return found.sort((a, b) => a.step - b.step);
}

/**
 * Reads a checkpoint for --resume. `dir` is a checkpoint directory, or a run's output directory,
 * in which case its latest checkpoint-<step> is taken.
 */
export function readCheckpoint(dir: string): LoadedCheckpoint {
  if (!existsSync(dir)) throw new UserError(`${dir}: no such checkpoint directory`);
  if (!statSync(dir).isDirectory()) throw new UserError(`${dir}: is a file (--resume needs a checkpoint or run directory)`);
  let ckpt = dir;
  if (!existsSync(path.join(dir, TRAINER_STATE_FILE))) {
    const all = listCheckpoints(dir);
    if (all.length === 0) throw new UserError(`${dir}: not a checkpoint (no ${TRAINER_STATE_FILE}) and holds no checkpoint-<step> directory`);
    ckpt = all[all.length - 1].dir;
  }
  const stateFile = path.join(ckpt, TRAINER_STATE_FILE);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as TrainerState;
  } catch (e) {
    throw new UserError(`${stateFile}: cannot read (${(e as Error).message})`);
  }
  if (state?.format !== STATE_FORMAT) throw new UserError(`${stateFile}: not a wgpu-char trainer state`);
  if (state.version !== STATE_VERSION) throw new UserError(`${stateFile}: version ${state.version}, this build reads version ${STATE_VERSION}`);
  for (const k of ['step', 'epoch', 'step_in_epoch', 'total_steps', 'steps_per_epoch'] as const) {
    if (!Number.isInteger(state[k]) || state[k] < 0) throw new UserError(`${stateFile}: "${k}" must be a non-negative integer`);
  }
  if (!Array.isArray(state.rng_state) || state.rng_state.length !== 4) throw new UserError(`${stateFile}: "rng_state" must be 4 integers`);
  if (!Array.isArray(state.log_history)) throw new UserError(`${stateFile}: "log_history" missing`);

  const optFile = path.join(ckpt, OPTIMIZER_FILE);
  if (!existsSync(optFile)) throw new UserError(`${optFile}: missing (the checkpoint cannot be resumed without its optimizer state)`);
  const f = SafetensorsFile.open(optFile);
  const optimizer: TensorMapF32 = new Map();
  try {
    for (const name of f.names()) optimizer.set(name, { shape: [...f.info(name).shape], data: f.readF32(name) });
  } finally {
    f.close();
  }
  if (![...optimizer.keys()].some((k) => k.startsWith(MASTER_PREFIX))) {
    throw new UserError(`${optFile}: no ${MASTER_PREFIX}* tensors (the f32 master weights a resume starts from)`);
  }
  return { dir: ckpt, state, optimizer };
}

/** Writes the final model into `out` itself (config.json, model.safetensors, tokenizer files, loss.svg), each file atomically. */
export async function writeFinalModel(out: string, c: Pick<CheckpointContents, 'cfg' | 'dtype' | 'weights' | 'tokenizerDir' | 'lossSvg' | 'adapter'>): Promise<void> {
  const a = c.adapter;
  try {
    mkdirSync(out, { recursive: true });
    if (a) await writePeftAdapter(out, a.config, a.baseModel, c.weights);
    else await saveLlamaCheckpointCpu(out, c.cfg, c.weights, c.dtype);
  } catch (e) {
    throw e instanceof DiskFullError ? e : asDiskFull(e, path.join(out, a ? ADAPTER_WEIGHTS : 'model.safetensors'));
  }
  copyTokenizerFiles(c.tokenizerDir, out, true);
  writeFileAtomic(path.join(out, LOSS_SVG_FILE), c.lossSvg);
  if (a?.merge) {
    const merged = path.join(out, MERGED_DIR);
    try {
      await writeMergedModel(merged, c.cfg, c.dtype, a, c.weights);
    } catch (e) {
      throw e instanceof DiskFullError ? e : asDiskFull(e, path.join(merged, 'model.safetensors'));
    }
    copyTokenizerFiles(c.tokenizerDir, merged, true);
  }
}

/** What a LoRA run writes instead of a model: the adapter's config, the base it adapts, and whether to merge it into OUT/merged/. */
export interface AdapterOutput {
  config: LoraConfig;
  /** The base model's directory (adapter_config.json's base_model_name_or_path; its weights for the merge). */
  baseModel: string;
  merge?: boolean;
}

export const MERGED_DIR = 'merged';

/**
 * OUT/merged/: the base weights of `a.baseModel` with the adapter merged in, W + (alpha / r)·B·A
 * (src/model/lora.ts mergeLora, in f32 on the CPU, one tensor at a time), saved as a full HF
 * checkpoint in the run's dtype: what llama.cpp's converters, Ollama and vLLM load directly.
 */
async function writeMergedModel(dir: string, cfg: LlamaConfig, dtype: 'bf16' | 'f32', a: AdapterOutput, adapter: TensorMapF32): Promise<void> {
  const base = loadLlamaWeightsCpu(a.baseModel, cfg, { dtype: 'f32' });
  const scale = loraScale(a.config);
  for (const [name, t] of base) {
    const n = adapterNames(name);
    const A = adapter.get(n.a);
    const B = adapter.get(n.b);
    if (A && B) mergeLora(t.data, t.shape[0], t.shape[1], A.data, B.data, a.config.r, scale);
  }
  await saveLlamaCheckpointCpu(dir, cfg, base, dtype);
}

/**
 * --save-total-limit: removes the oldest checkpoint-<step> directories of `out` until `limit`
 * remain, never one in `keep` (the checkpoint a run resumed from). Each goes through a rename to
 * a `.tmp` name first, so a crash mid-removal leaves nothing that reads as a checkpoint (and
 * `removeStaleTemps` finishes the job). Returns the names removed, oldest first.
 */
export function removeOldCheckpoints(out: string, limit: number, keep: readonly string[] = []): string[] {
  if (!(limit > 0)) return [];
  const kept = new Set(keep.map((k) => path.resolve(k)));
  const all = listCheckpoints(out);
  const removed: string[] = [];
  for (const c of all.slice(0, Math.max(0, all.length - limit))) {
    if (kept.has(path.resolve(c.dir))) continue;
    const doomed = tempPathFor(path.resolve(c.dir));
    rmSync(doomed, { recursive: true, force: true });
    renameSync(c.dir, doomed);
    rmSync(doomed, { recursive: true, force: true });
    removed.push(path.basename(c.dir));
  }
  return removed;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Cleans up after a writer that died (its pid no longer runs): `checkpoint-<n>.<pid>.tmp` is
 * removed; `checkpoint-<n>.<pid>.old` (a complete checkpoint moved aside for a same-name
 * replacement) is renamed back when `checkpoint-<n>` is missing, else removed. Returns the names
 * removed or restored.
 */
export function removeStaleTemps(out: string): string[] {
  if (!existsSync(out)) return [];
  const done: string[] = [];
  for (const name of readdirSync(out)) {
    const m = /^(checkpoint-\d+)\.(\d+)\.(tmp|old)$/.exec(name);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || pidAlive(pid)) continue;
    const p = path.join(out, name);
    if (!statSync(p).isDirectory()) continue;
    const finalDir = path.join(out, m[1]);
    if (m[3] === 'old' && !existsSync(finalDir)) renameSync(p, finalDir);
    else rmSync(p, { recursive: true, force: true });
    done.push(name);
  }
  return done;
}
