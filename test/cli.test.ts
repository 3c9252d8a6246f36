// The `wgpu-char` program (src/cli/): the shared option parsers, one-line errors for bad option
// values and usage mistakes, --version, and that --help, --version and `data` load no GPU code.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command, Option } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { denyGpuNodeArgs } from './util/deny-gpu.ts';
import { UserError } from '../src/errors.ts';
import { buildProgram } from '../src/cli/main.ts';
import { choiceOption, dtypeOption, integerOption, numberOption, parseInteger, parseNumber, repeatedStringOption } from '../src/cli/options.ts';
import { expectUserError, expectUserErrorAsync } from './util/user-error.ts';

const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

function cli(args: string[], nodeArgs: string[] = []) {
  return spawnSync(process.execPath, [...nodeArgs, 'bin/wgpu-char.js', ...args], { encoding: 'utf8', timeout: 60_000 });
}

/** Every command and subcommand of the program, with its options. */
function allCommands(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(allCommands)];
}

describe('option parsers (src/cli/options.ts)', () => {
  it('integers: range, whole numbers only, no empty value', () => {
    const port = parseInteger('--port', { min: 0, max: 65535 });
    expect(port('0')).toBe(0);
    expect(port('65535')).toBe(65535);
    for (const bad of ['-1', '65536', '1.5', 'abc', '', ' ', 'Infinity']) {
      expectUserError(() => port(bad), '--port', /^--port: must be an integer in \[0, 65535\] \(got "[^"]*"\)$/);
    }
    expectUserError(() => parseInteger('--epochs', { min: 1 })('0'), '--epochs', /^--epochs: must be an integer ≥ 1 \(got "0"\)$/);
    expectUserError(() => parseInteger('--seed', { min: 0 })('1e300'), '--seed', /an integer ≥ 0/);
  });

  it('numbers: inclusive and exclusive bounds', () => {
    expect(parseNumber('--lr', { min: 0 })('2e-5')).toBe(2e-5);
    expect(parseNumber('--lr', { min: 0 })('0')).toBe(0);
    expectUserError(() => parseNumber('--lr', { min: 0 })('abc'), '--lr', /^--lr: must be a number ≥ 0 \(got "abc"\)$/);
    expectUserError(() => parseNumber('--max-grad-norm', { min: 0, minExclusive: true })('0'), '--max-grad-norm', /^--max-grad-norm: must be a number > 0 \(got "0"\)$/);
    expectUserError(() => parseNumber('--top-p', { min: 0, max: 1 })('1.5'), '--top-p', /^--top-p: must be a number in \[0, 1\] \(got "1.5"\)$/);
    expectUserError(() => parseNumber('--x', { min: 0, max: 1, minExclusive: true })('0'), '--x', /in \(0, 1\]/);
    expectUserError(() => parseNumber('--t', { max: 2 })('3'), '--t', /^--t: must be a number ≤ 2/);
    expectUserError(() => parseNumber('--lr', { min: 0 })('Infinity'), '--lr', /a number ≥ 0/);
    expectUserError(() => parseNumber('--lr', { min: 0 })(''), '--lr', /a number ≥ 0/);
  });

  it('a value with quotes or a line break is quoted on the one line', () => {
    expectUserError(() => parseNumber('--lr')('a"\nb'), '--lr', /^--lr: must be a number \(got "a\\"\\nb"\)$/);
  });

  it('builders name the long flag and keep commander\'s help (choices, defaults)', () => {
    const maxLen = integerOption('-m, --max-len <n>', 'tokens', { min: 2 }, 2048);
    expect(maxLen.defaultValue).toBe(2048);
    expectUserError(() => maxLen.parseArg!('1', undefined), '--max-len', /an integer ≥ 2/);
    expect(numberOption('--lr <lr>', 'lr', { min: 0 }).defaultValue).toBeUndefined();
    const dtype = dtypeOption();
    expect(dtype.argChoices).toEqual(['bf16', 'f32']);
    expect(dtype.defaultValue).toBe('bf16');
    expect(dtype.parseArg!('f32', undefined)).toBe('f32');
    expectUserError(() => dtype.parseArg!('f16', undefined), '--dtype', /^--dtype: must be one of bf16, f32 \(got "f16"\)$/);
    const sched = choiceOption('--lr-scheduler <kind>', 'schedule', ['cosine', 'constant'], 'cosine');
    expectUserError(() => sched.parseArg!('linear', undefined), '--lr-scheduler', /one of cosine, constant/);
    const names = repeatedStringOption('--model-name <name>', 'aliases');
    expect(names.parseArg!('b', names.parseArg!('a', undefined))).toEqual(['a', 'b']);
  });

  it('every option of every command that parses its value rejects garbage with one line naming the option', () => {
    const checked: string[] = [];
    for (const cmd of allCommands(buildProgram())) {
      for (const option of cmd.options as Option[]) {
        if (!option.parseArg || option.long === '--version') continue;
        let err: unknown;
        try {
          option.parseArg('not-a-value', undefined);
        } catch (e) {
          err = e;
        }
        if (err === undefined) continue; // a free-form value (--model-name)
        expectUserError(() => { throw err; }, option.long!, /^--[a-z-]+: must be .* \(got "not-a-value"\)$/);
        checked.push(`${cmd.name()} ${option.long}`);
      }
    }
    expect(checked).toEqual(expect.arrayContaining(['train --lr', 'train --dtype', 'train --lr-scheduler', 'chat --dtype', 'serve --port', 'serve --dtype', 'eval --max-len', 'build --timeout', 'generate --top-p']));
  });
});

describe('the program, in process', () => {
  it('a bad option value is a UserError naming the option, before any command runs', async () => {
    await expectUserErrorAsync(buildProgram().parseAsync(['train', '--lr', 'abc'], { from: 'user' }), '--lr', /^--lr: must be a number ≥ 0 \(got "abc"\)$/);
    await expectUserErrorAsync(buildProgram().parseAsync(['chat', '--dtype', 'f16'], { from: 'user' }), '--dtype', /must be one of bf16, f32 \(got "f16"\)/);
    await expectUserErrorAsync(buildProgram().parseAsync(['serve', '--port', '-1'], { from: 'user' }), '--port', /an integer in \[0, 65535\]/);
  });

  it('lists the commands in the usual order', () => {
    expect(buildProgram().commands.map((c) => c.name())).toEqual(['info', 'chat', 'generate', 'eval', 'data', 'train', 'plan', 'serve', 'export', 'interview', 'score', 'apply-delta', 'bench']);
  });
});

describe('bin/wgpu-char.js', () => {
  let tmp: string;
  let noGpu: string[];
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'wgpu-char-cli-'));
    noGpu = denyGpuNodeArgs(tmp);
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('--version prints the version of package.json', () => {
    const r = cli(['--version']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${VERSION}\n`);
  });

  it('a bad option value prints one line naming the option and the accepted values, exit 1', () => {
    for (const [args, line] of [
      [['train', '--lr', 'abc'], 'wgpu-char: --lr: must be a number ≥ 0 (got "abc")'],
      [['chat', '--dtype', 'f16'], 'wgpu-char: --dtype: must be one of bf16, f32 (got "f16")'],
      [['serve', '--port', '-1'], 'wgpu-char: --port: must be an integer in [0, 65535] (got "-1")'],
      [['data', 'build', '--concurrency', '0'], 'wgpu-char: --concurrency: must be an integer ≥ 1 (got "0")'],
    ] as const) {
      const r = cli([...args]);
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 1, stdout: '', stderr: `${line}\n` });
    }
  });

  it('an unknown option or a missing required option is one line pointing at the command\'s --help, exit 1', () => {
    const unknown = cli(['train', '--epoch', '2']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toBe('wgpu-char: unknown option \'--epoch\' (Did you mean --epochs?); see wgpu-char train --help\n');
    const missing = cli(['data', 'build', '--out', tmp]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('wgpu-char: required option \'--profile <file>\' not specified; see wgpu-char data build --help\n');
  });

  it('--help, --version and `data` load no GPU code', () => {
    const help = cli(['--help'], noGpu);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: wgpu-char \[options\] \[command\]/);
    expect(help.stdout).toContain('-V, --version');
    for (const args of [['--version'], ['train', '--help'], ['data', 'build', '--help']]) {
      const r = cli(args, noGpu);
      expect(r.status, r.stderr).toBe(0);
    }
    // A data command that runs (and fails on the missing profile copy) without the GPU stack.
    const convert = cli(['data', 'convert', '--out', join(tmp, 'empty')], noGpu);
    expect(convert.status).toBe(1);
    expect(convert.stderr).toMatch(/^wgpu-char: .*character\.json: not found/);
    // The hook itself works: `info` needs the GPU and is refused.
    const info = cli(['info'], noGpu);
    expect(info.status).not.toBe(0);
    expect(info.stderr).toContain('GPU code loaded');
  });
});
