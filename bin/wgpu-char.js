#!/usr/bin/env node
// Entry point of the `wgpu-char` command: runs src/cli.ts through tsx's loader so the package
// ships TypeScript sources without a build step.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

register();
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli.ts');
await import(cli);
