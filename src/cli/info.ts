/** `wgpu-char info`: the WebGPU adapter, backend, features and limits, and whether it is a software adapter. */
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('info')
    .description('print the WebGPU adapter, backend and limits, and whether it is a software adapter')
    .option('--json', 'one JSON object')
    .action(async (opts: { json?: boolean }) => {
      const { acquireGpu } = await import('../node/dawn.ts');
      const gpu = await acquireGpu();
      const r = gpu.report;
      if (opts.json) {
        console.log(JSON.stringify(r));
        return;
      }
      console.log(`adapter:      ${r.description}`);
      console.log(`vendor:       ${r.vendor}`);
      console.log(`architecture: ${r.architecture}`);
      console.log(`backend:      ${r.backend}`);
      console.log(`software:     ${r.isSoftware ? 'yes (CPU emulation: slow, but exact)' : 'no'}`);
      console.log(`subgroups:    ${gpu.hasSubgroups ? `yes (size ${r.subgroupSize ?? '?'})` : 'no'}`);
      console.log(`features:     ${r.features.join(', ')}`);
      console.log('limits:');
      for (const [k, v] of Object.entries(r.limits)) console.log(`  ${k}: ${v}`);
    });
}
