/**
 * The `wgpu-char` program: one module per command in this folder, --version, and how errors are
 * shown. bin/wgpu-char.js calls `main`.
 *
 * Errors: a UserError (bad file, bad option value, unreachable API) prints one line and exits 1;
 * commander's usage errors (unknown command or option, missing required option) print one line
 * pointing at the command's --help and exit 1; anything else is a bug and prints its stack.
 */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import * as applyDelta from './apply-delta.ts';
import * as bench from './bench.ts';
import * as chat from './chat.ts';
import * as data from './data.ts';
import * as evaluate from './eval.ts';
import * as exportCmd from './export.ts';
import * as generate from './generate.ts';
import * as info from './info.ts';
import * as interview from './interview.ts';
import * as plan from './plan.ts';
import * as score from './score.ts';
import * as serve from './serve.ts';
import * as train from './train.ts';

const PROGRAM_NAME = 'wgpu-char';

/** The commands, in the order `wgpu-char --help` lists them. Each module imports its GPU code only when its command runs. */
const COMMANDS: readonly { register(program: Command): void }[] = [info, chat, generate, evaluate, data, train, plan, serve, exportCmd, interview, score, applyDelta, bench];

/** The version in package.json, read from the package this file belongs to. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** `wgpu-char data build`, for a subcommand. */
function commandPath(cmd: Command): string {
  return cmd.parent ? `${commandPath(cmd.parent)} ${cmd.name()}` : cmd.name();
}

/**
 * Commander's usage errors on one line, e.g. `wgpu-char: unknown option '--bogus'; see wgpu-char train --help`,
 * instead of "error: …" and its "(Did you mean …?)" on a second line. Commander shares one output
 * configuration between a command and the subcommands it creates, so each command gets its own
 * here, naming itself.
 */
function printUsageErrorsOnOneLine(cmd: Command): void {
  const help = `${commandPath(cmd)} --help`;
  cmd.configureOutput({
    outputError: (message, write) => write(`${PROGRAM_NAME}: ${message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim()}; see ${help}\n`),
  });
  for (const sub of cmd.commands) printUsageErrorsOnOneLine(sub);
}

export function buildProgram(): Command {
  const program = new Command()
    .name(PROGRAM_NAME)
    .description('Train and chat with role-playing Character-LLMs (LLaMA) in WGSL on WebGPU')
    .version(packageVersion());
  for (const command of COMMANDS) command.register(program);
  printUsageErrorsOnOneLine(program);
  return program;
}

/** Parses `argv` (node's, with the executable and script first) and runs the command, then exits the process. */
export async function main(argv: readonly string[] = process.argv): Promise<never> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    console.error(`${PROGRAM_NAME}: ${e.message}`);
    process.exit(1);
  }
  // Dawn keeps the event loop alive while a device exists: exit explicitly when done, keeping
  // a code a command set (the data pipeline exits 2 when some items failed).
  process.exit(process.exitCode ?? 0);
}
