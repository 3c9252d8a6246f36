#!/usr/bin/env node
// Makes sure Dawn (npm `webgpu`) finds a WebGPU adapter on this machine.
//
// On a machine with a GPU driver nothing is done. Without one, Dawn needs a Vulkan driver on the
// CPU: Mesa's lavapipe. Debian bookworm's own Mesa 22.3 is rejected by Dawn
// ("shaderUniform*ArrayDynamicIndexing required"), Mesa 25 from bookworm-backports works. So,
// only when no adapter is found, this script adds the `bookworm-backports` suite of Debian's own
// archive and installs `mesa-vulkan-drivers` from it, printing every command it runs. It fails with
// one clear line where it cannot (not root, not Debian bookworm, apt failure).
//
// The adapter probe runs in a child process: a missing or broken driver can crash Dawn natively,
// and that must not take this script down with it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const probeScript = path.join(here, 'probe-adapter.mjs');

function probe() {
  const env = { ...process.env };
  if (!env.XDG_RUNTIME_DIR) env.XDG_RUNTIME_DIR = '/tmp'; // silences the Vulkan loader's warnings
  const r = spawnSync(process.execPath, [probeScript], { env, encoding: 'utf8', timeout: 120_000 });
  const line = (r.stdout || '').trim().split('\n').pop() || '';
  if (r.status === 0 && line.startsWith('{')) return JSON.parse(line);
  return null;
}

function fail(msg) {
  console.error(`setup-webgpu: ${msg}`);
  process.exit(1);
}

function run(cmd, args) {
  console.log(`setup-webgpu: $ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) fail(`'${cmd} ${args.join(' ')}' failed with exit code ${r.status}`);
}

let info = probe();
if (info) {
  console.log(`setup-webgpu: adapter found: ${info.description} (${info.vendor}, ${info.architecture}) — nothing to install`);
  process.exit(0);
}
console.log('setup-webgpu: no WebGPU adapter found; installing Mesa lavapipe (Vulkan on the CPU) from bookworm-backports');

if (process.platform !== 'linux') fail(`no WebGPU adapter and platform is ${process.platform}: install your GPU's Vulkan/Metal/D3D12 driver`);
const osRelease = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '';
const codename = /VERSION_CODENAME=(\w+)/.exec(osRelease)?.[1];
if (!/ID=debian/.test(osRelease) || codename !== 'bookworm') {
  fail(`no WebGPU adapter, and this is not Debian bookworm (${codename ?? 'unknown OS'}): install Mesa >= 25 'mesa-vulkan-drivers' (lavapipe) or a GPU driver by hand`);
}
if (process.getuid?.() !== 0) fail('no WebGPU adapter; installing lavapipe needs root: run `sudo node scripts/setup-webgpu.mjs`');

const listFile = '/etc/apt/sources.list.d/wgpu-char-backports.list';
const already = execFileSync('bash', ['-c', 'cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null || true'], { encoding: 'utf8' });
if (!/bookworm-backports/.test(already)) {
  console.log(`setup-webgpu: writing ${listFile}`);
  writeFileSync(listFile, 'deb http://deb.debian.org/debian bookworm-backports main\n');
}
run('apt-get', ['update', '-q']);
run('apt-get', ['install', '-y', '-q', '-t', 'bookworm-backports', 'mesa-vulkan-drivers', 'libvulkan1']);

info = probe();
if (!info) fail('installed mesa-vulkan-drivers from bookworm-backports but Dawn still finds no adapter (run `node scripts/probe-adapter.mjs` to see why)');
console.log(`setup-webgpu: adapter found: ${info.description} (${info.vendor}, ${info.architecture})`);
