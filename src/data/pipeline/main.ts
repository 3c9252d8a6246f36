/**
 * Stand-alone entry for the data pipeline (`node --import tsx src/data/pipeline/main.ts data build ...`),
 * used by the kill-and-resume test, which needs a real child process to signal. The product entry
 * is `wgpu-char data ...` (src/cli.ts calls the same registerDataCommands).
 */
import { Command } from 'commander';
import { UserError } from '../../errors.ts';
import { registerDataCommands } from './cli.ts';

const program = new Command('wgpu-char').description('wgpu-char data pipeline');
registerDataCommands(program);
try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof UserError) {
    process.stderr.write(`error: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
