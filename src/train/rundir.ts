/**
 * The run directory (--out) of `wgpu-char train`: its paths checked before anything starts, its
 * lock, what counts as "a run" in it, and what --overwrite removes.
 *
 * A run's files (all directly in OUT; `RUN_FILE_RE`): the final model (model.safetensors, or
 * model-0000i-of-0000N.safetensors shards + model.safetensors.index.json; config.json), the
 * tokenizer files copied from --model (tokenizer.model, tokenizer_config.json,
 * special_tokens_map.json, generation_config.json), train_log.jsonl, loss.svg, eval_data.jsonl,
 * every checkpoint-<step>/, and the temp leftovers of a killed writer (`<one of those>.<pid>.tmp`
 * or `.old`). A fresh run refuses an OUT holding any of them (or a non-empty --log elsewhere)
 * unless --overwrite is given; --overwrite removes exactly those, once every input has been checked
 * and the model loaded, and leaves any other file alone. The lock file is OUT/.train.lock.
 */
import { accessSync, constants, existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { acquireLockUntilExit, isAlive } from '../util/lock.ts';
import { MERGED_DIR, TOKENIZER_FILES } from './checkpoint.ts';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS } from '../formats/peft.ts';
import type { TrainArgs } from './state.ts';

export const LOCK_FILE = '.train.lock';
export const LOG_FILE = 'train_log.jsonl';
export const EVAL_DATA_FILE = 'eval_data.jsonl';

const WEIGHT_FILE_RE = /^(model\.safetensors|model-\d{5}-of-\d{5}\.safetensors|model\.safetensors\.index\.json)$/;
const CHECKPOINT_RE = /^checkpoint-(\d+)$/;
const OTHER_RUN_FILES = ['config.json', LOG_FILE, 'loss.svg', EVAL_DATA_FILE, ...TOKENIZER_FILES, ADAPTER_CONFIG, ADAPTER_WEIGHTS, MERGED_DIR];
const LEFTOVER_RE = /^(.+)\.(\d+)\.(tmp|old)$/;

/** Whether `name` (directly in OUT) is one of a run's files or checkpoints. */
function isRunFile(name: string): boolean {
  return WEIGHT_FILE_RE.test(name) || CHECKPOINT_RE.test(name) || OTHER_RUN_FILES.includes(name);
}

/** Rank for listing: weights, log, checkpoints by step, the rest. */
function rank(name: string): [number, number] {
  if (WEIGHT_FILE_RE.test(name)) return [0, 0];
  if (name === LOG_FILE) return [1, 0];
  const m = CHECKPOINT_RE.exec(name);
  if (m) return [2, Number(m[1])];
  return [3, OTHER_RUN_FILES.indexOf(name)];
}

/** The run files in `out` (names, most telling first); stale temp leftovers not included. */
export function runFilesIn(out: string): string[] {
  if (!existsSync(out) || !statSync(out).isDirectory()) return [];
  return readdirSync(out).filter(isRunFile).sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0] - y[0] || x[1] - y[1] || a.localeCompare(b);
  });
}

/** Whether `out` is the run directory of checkpoint `ckptDir` (its parent, when it is named checkpoint-<step>). */
export function isRunDirOf(out: string, ckptDir: string): boolean {
  return CHECKPOINT_RE.test(path.basename(path.resolve(ckptDir))) && path.resolve(out) === path.dirname(path.resolve(ckptDir));
}

/**
 * The run directory a `--resume` argument names: the directory itself when it is a run directory
 * (`ckptDir`, the checkpoint taken, lies inside it), the parent of a checkpoint-<step> directory,
 * or null for a checkpoint under another name.
 */
export function runDirOfResume(given: string, ckptDir: string): string | null {
  if (path.resolve(given) !== path.resolve(ckptDir)) return given;
  return CHECKPOINT_RE.test(path.basename(path.resolve(ckptDir))) ? path.dirname(given) : null;
}

/**
 * Refuses to write into an OUT holding a run (or over a non-empty --log) that is not the run
 * being resumed; `overwrite` allows it. `resumeDir`: the checkpoint resumed from.
 */
export function checkRunDirFree(args: Pick<TrainArgs, 'out' | 'log'>, o: { resumeDir?: string; overwrite?: boolean } = {}): void {
  if (o.overwrite) return;
  if (o.resumeDir && isRunDirOf(args.out, o.resumeDir)) return;
  const found = runFilesIn(args.out);
  if (found.length > 0) {
    const shown = found.length > 4 ? [...found.slice(0, 4), '…'] : found;
    const resumable = found.some((f) => CHECKPOINT_RE.test(f));
    throw new UserError(`${args.out}: already holds a run (${shown.join(', ')}); ` +
      `${resumable ? `continue it with --resume ${args.out}, ` : ''}replace it with --overwrite, or choose another --out`);
  }
  if (existsSync(args.log) && statSync(args.log).isFile() && statSync(args.log).size > 0) {
    throw new UserError(`${args.log}: --log already holds a run's log; continue that run with --resume, replace it with --overwrite, or choose another --log`);
  }
}

/**
 * What --overwrite will remove must not be an input of this run: refuses a --data file, a
 * --model directory or the checkpoint resumed from among OUT's run files.
 */
export function checkOverwriteSpares(args: Pick<TrainArgs, 'out' | 'data' | 'model'>, resumeDir?: string): void {
  const out = path.resolve(args.out);
  const inOut = (p: string) => {
    const rel = path.relative(out, path.resolve(p));
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) && isRunFile(rel.split(path.sep)[0]);
  };
  if (inOut(args.data)) throw new UserError(`${args.data}: --overwrite would remove this --data file of the earlier run; copy it elsewhere first`);
  if (inOut(args.model)) throw new UserError(`${args.model}: --overwrite would remove this --model directory of the earlier run; copy it elsewhere first`);
  if (resumeDir !== undefined && inOut(resumeDir)) throw new UserError(`${resumeDir}: --overwrite would remove the checkpoint being resumed; drop --overwrite to continue this run`);
}

/** --overwrite: removes the run files of `out` (and temp leftovers of dead writers); returns the names removed, sorted. */
export function removeRunFiles(out: string): string[] {
  if (!existsSync(out)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(out)) {
    const left = LEFTOVER_RE.exec(name);
    const leftover = left !== null && isRunFile(left[1]) && Number(left[2]) !== process.pid && !isAlive(Number(left[2]));
    if (!isRunFile(name) && !leftover) continue;
    rmSync(path.join(out, name), { recursive: true, force: true });
    if (!leftover) removed.push(name);
  }
  return removed.sort((a, b) => a.localeCompare(b));
}

/** The nearest existing ancestor of `p` (p itself if it exists). */
function nearestExisting(p: string): string {
  let dir = path.resolve(p);
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/**
 * A directory the run writes into (`what`: --out, --log; `shown`: the path as the user gave it):
 * it, or its nearest existing parent when it does not exist yet, must be a writable directory.
 */
function checkWritableDir(dir: string, what: string, shown: string): void {
  const at = nearestExisting(dir);
  const atShown = path.isAbsolute(shown) ? at : path.relative(process.cwd(), at) || '.';
  if (!statSync(at).isDirectory()) throw new UserError(`${shown}: cannot be created, ${atShown} is a file (${what})`);
  try {
    accessSync(at, constants.W_OK);
  } catch (e) {
    throw new UserError(`${shown}: cannot write in ${atShown} (${(e as NodeJS.ErrnoException).code}) (${what})`);
  }
}

/**
 * Every path of the run, checked before the data is read or the GPU acquired: --data a readable
 * file, --model a directory, --out a directory or creatable as one, --log a file or creatable, and
 * --out not the --model directory. `fromCheckpoint(key)`: the value came from a resumed checkpoint.
 */
export function checkTrainPaths(args: Pick<TrainArgs, 'data' | 'model' | 'out' | 'log'>, fromCheckpoint: (key: 'data' | 'model') => boolean = () => false): void {
  const origin = (k: 'data' | 'model') => (fromCheckpoint(k) ? `--${k}, from the checkpoint's arguments: give --${k}` : `--${k}`);
  if (!existsSync(args.data)) throw new UserError(`${args.data}: no such file (${origin('data')})`);
  if (statSync(args.data).isDirectory()) throw new UserError(`${args.data}: is a directory (--data needs a prompted JSON/JSONL file)`);
  try {
    accessSync(args.data, constants.R_OK);
  } catch (e) {
    throw new UserError(`${args.data}: cannot read (${(e as NodeJS.ErrnoException).code}) (--data)`);
  }
  if (!existsSync(args.model)) throw new UserError(`${args.model}: no such model directory (${origin('model')})`);
  if (!statSync(args.model).isDirectory()) throw new UserError(`${args.model}: is a file (--model needs an HF model directory)`);
  if (existsSync(args.out) && !statSync(args.out).isDirectory()) throw new UserError(`${args.out}: is a file (--out needs a run directory)`);
  checkWritableDir(args.out, '--out', args.out);
  if (path.resolve(args.out) === path.resolve(args.model)) {
    throw new UserError(`${args.out}: --out is the --model directory: the run would replace the model it starts from; choose another --out`);
  }
  if (existsSync(args.log) && statSync(args.log).isDirectory()) throw new UserError(`${args.log}: is a directory (--log needs a file)`);
  checkWritableDir(path.dirname(path.resolve(args.log)), '--log', args.log);
}

/**
 * Creates OUT if needed and takes its lock (a second run fails at once; a stale lock is taken over
 * with a note through `say`). The returned release frees the lock and, when the run failed
 * (`failed`), removes the directories it created if they hold nothing.
 */
export function lockRunDir(out: string, say: (line: string) => void): (failed: boolean) => void {
  const firstCreated = mkdirSync(out, { recursive: true });
  const release = acquireLockUntilExit(path.join(out, LOCK_FILE), {
    onTakeover: (pid) => say(`${out}: taking over the lock of pid ${pid}, which is no longer running (lock file ${LOCK_FILE})`),
  });
  return (failed) => {
    release();
    if (!failed || firstCreated === undefined) return;
    // the directories this run created, innermost first, as long as they are empty
    const stop = path.dirname(path.resolve(firstCreated));
    for (let dir = path.resolve(out); dir !== stop && dir !== path.dirname(dir); dir = path.dirname(dir)) {
      try {
        rmdirSync(dir);
      } catch {
        return;
      }
    }
  };
}
