/** Running commands in this process for the tests, with their output captured (the data pipeline's and the evaluation's). */
import { Command } from 'commander';
import type { DataIO } from '../../src/data/pipeline/run.ts';

export type CliRun = { exitCode: number; stdout: string; stderr: string };

/** Parses `args` with the commands `register` adds to a fresh program; stdout, stderr and the exit code are captured. */
export async function runInProcess(args: string[], register: (program: Command, io: DataIO) => void): Promise<CliRun> {
  const run: CliRun = { exitCode: 0, stdout: '', stderr: '' };
  const io: DataIO = {
    stdout: { write: (t: string) => (run.stdout += t) },
    stderr: { write: (t: string) => (run.stderr += t), isTTY: false },
    setExitCode: (code) => (run.exitCode = code),
  };
  const program = new Command('wgpu-char').exitOverride();
  register(program, io);
  await program.parseAsync(args, { from: 'user' });
  return run;
}
