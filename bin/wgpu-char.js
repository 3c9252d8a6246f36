#!/usr/bin/env node
// Entry point of the `wgpu-char` command: runs src/cli/main.ts through tsx's loader so the package
// ships TypeScript sources without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import(new URL('../src/cli/main.ts', import.meta.url).href);
await main();
