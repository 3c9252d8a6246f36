/**
 * Node arguments that make a child process fail on any import of the GPU stack (src/gpu/, the webgpu
 * package): for tests that a command checks its inputs, or prints help, without loading GPU code.
 * The hook files are written into `dir`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function denyGpuNodeArgs(dir: string): string[] {
  writeFileSync(join(dir, 'deny-gpu.mjs'), `
    export async function resolve(specifier, context, next) {
      const r = await next(specifier, context);
      if (/\\/src\\/gpu\\/|\\/node_modules\\/webgpu\\//.test(r.url)) throw new Error('GPU code loaded: ' + r.url);
      return r;
    }
  `);
  writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister('./deny-gpu.mjs', import.meta.url);\n`);
  return ['--import', join(dir, 'register.mjs')];
}
