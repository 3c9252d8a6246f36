/**
 * `wgpu-char bench [options]`: the benchmark report of `npm run bench` (bench/report.ts: ours
 * against PyTorch and llama.cpp on this machine, written to bench/REPORT.md and bench/results/).
 * The options go to the report unchanged (`wgpu-char bench --quick`, `--only kernels`, `--reps 5`;
 * `wgpu-char bench --help` lists them). It runs as its own process (tsx, as `npm run bench`
 * does), so its exit status is this command's.
 */
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('bench')
    .description('the benchmark report against PyTorch and llama.cpp on this machine (npm run bench; options go to bench/report.ts)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]', 'options of bench/report.ts (--quick, --only kernels|e2e, --reps N, ...)')
    .action(async (args: string[]) => {
      const report = fileURLToPath(new URL('../../bench/report.ts', import.meta.url));
      const tsx = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));
      if (!existsSync(report)) throw new UserError(`${report}: the benchmarks are not in this installation (they ship with the repository, not the package)`);
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [tsx, report, ...args], { stdio: 'inherit' });
        child.on('error', reject);
        child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
      });
      if (code !== 0) process.exitCode = code;
    });
}
