// `wgpu-char generate` and `chat` end to end: settings the context cannot hold are one line before
// the GPU starts (and before chat prints anything), a --context above the model's maximum is said
// once, a prompt cut to fit is said once.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpu } from './util/gpu.ts';
import { denyGpuNodeArgs } from './util/deny-gpu.ts';

let tmp: string;
/** Node arguments of a hook that fails any import of the GPU stack (as in cli.test.ts). */
let noGpu: string[];
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'wgpu-char-gen-cli-'));
  noGpu = denyGpuNodeArgs(tmp);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[], opts: { nodeArgs?: string[]; input?: string } = {}) {
  return spawnSync(process.execPath, [...(opts.nodeArgs ?? []), 'bin/wgpu-char.js', ...args], { encoding: 'utf8', timeout: 120_000, input: opts.input ?? '' });
}

/** stderr without Dawn's start-up warnings. */
const errLines = (stderr: string) => stderr.split('\n').filter((l) => l !== '' && !l.startsWith('Warning: '));

describe('--max-new-tokens the context cannot hold: one line, exit 1, before the GPU', () => {
  it('generate: the model\'s context, and --context', () => {
    const r = cli(['generate', '--model', 'weights/tiny', '--prompt', 'hi', '--max-new-tokens', '600'], { nodeArgs: noGpu });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 1, stdout: '',
      stderr: 'wgpu-char: --max-new-tokens 600 leaves no room for the prompt in the 512-token context (the model\'s max_position_embeddings): give at most 511\n',
    });
    const small = cli(['generate', '--model', 'weights/tiny', '--prompt', 'hi', '--context', '4'], { nodeArgs: noGpu });
    expect({ status: small.status, stdout: small.stdout, stderr: small.stderr }).toEqual({
      status: 1, stdout: '',
      stderr: 'wgpu-char: --max-new-tokens 128 leaves no room for the prompt in the 4-token context (--context 4): give at most 3, or a larger --context (up to 512)\n',
    });
  });

  it('chat: nothing printed first (no "Beethoven: ")', () => {
    const r = cli(['chat', '--model', 'weights/tiny', '--character', 'Beethoven', '--max-new-tokens', '512'], { nodeArgs: noGpu, input: 'Hello\n' });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 1, stdout: '',
      stderr: 'wgpu-char: --max-new-tokens 512 leaves no room for the prompt in the 512-token context (the model\'s max_position_embeddings): give at most 511\n',
    });
  });
});

describe('generate --stop ""', () => {
  it('is one line (an empty stop string ended the output before it started: nothing printed, exit 0)', () => {
    const r = cli(['generate', '--model', 'weights/tiny', '--prompt', 'hi', '--stop', '<|eot|>', ''], { nodeArgs: noGpu });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 1, stdout: '', stderr: 'wgpu-char: --stop: must not be empty (an empty stop string matches at once: the output would be empty)\n',
    });
  });
});

describe('other inputs checked up front: one line', () => {
  it('generate --prompt-file a directory; chat --character "" or --user-name ""', () => {
    const dir = cli(['generate', '--model', 'weights/tiny', '--prompt-file', tmp], { nodeArgs: noGpu });
    expect({ status: dir.status, stdout: dir.stdout, stderr: dir.stderr }).toEqual({ status: 1, stdout: '', stderr: `wgpu-char: ${tmp}: cannot read (EISDIR)\n` });
    const noName = cli(['chat', '--model', 'weights/tiny', '--character', ' '], { nodeArgs: noGpu, input: 'hi\n' });
    expect({ status: noName.status, stdout: noName.stdout, stderr: noName.stderr }).toEqual({ status: 1, stdout: '', stderr: 'wgpu-char: --character: must not be empty\n' });
    const noUser = cli(['chat', '--model', 'weights/tiny', '--character', 'Beethoven', '--user-name', ''], { nodeArgs: noGpu, input: 'hi\n' });
    expect({ status: noUser.status, stdout: noUser.stdout, stderr: noUser.stderr }).toEqual({ status: 1, stdout: '', stderr: 'wgpu-char: --user-name: must not be empty\n' });
  });
});

describe('a config.json the weights contradict: one line naming it, before the GPU starts', () => {
  it('chat, generate and eval', () => {
    const dir = join(tmp, 'forty-layers');
    mkdirSync(dir);
    for (const f of ['model.safetensors', 'tokenizer.model']) symlinkSync(join(process.cwd(), 'weights/tiny', f), join(dir, f));
    const raw = JSON.parse(readFileSync('weights/tiny/config.json', 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...raw, num_hidden_layers: 40 }));
    const line = `wgpu-char: ${join(dir, 'config.json')}: num_hidden_layers 40, but ${join(dir, 'model.safetensors')} has tensors of 4 layers (model.layers.0 to model.layers.3)`;
    writeFileSync(join(tmp, 'one.jsonl'), '{"prompt":"Man (speaking): hi<|eot|>\\n","output":"Beethoven (speaking): hello<|eot|>"}\n');
    for (const args of [['chat', '--model', dir, '--character', 'Beethoven'], ['generate', '--model', dir, '--prompt', 'hi'],
      ['eval', '--model', dir, '--data', join(tmp, 'one.jsonl')]]) {
      const r = cli(args, { input: 'Hello\n' });
      // Not even the "GPU llvmpipe ..." line: the weights' headers are read before the GPU starts.
      expect({ status: r.status, stdout: r.stdout, stderr: errLines(r.stderr) }, args[0]).toEqual({ status: 1, stdout: '', stderr: [line] });
    }
  });
});

describe.skipIf(!gpu)('generate: settings adjusted to the model are said once', () => {
  it('--context above max_position_embeddings: one note, then the model\'s maximum', () => {
    const r = cli(['generate', '--model', 'weights/tiny', '--prompt', 'Beethoven (speaking):', '--context', '100000', '--max-new-tokens', '3', '--temperature', '0']);
    expect(r.status, r.stderr).toBe(0);
    const notes = errLines(r.stderr).filter((l) => l.includes('--context'));
    expect(notes).toEqual(['wgpu-char: --context 100000 exceeds the model\'s max_position_embeddings 512: using 512']);
    expect(r.stdout.trim().length).toBeGreaterThan(0);
  });

  it('a prompt cut to fit the context: one note saying how much was kept', () => {
    const prompt = Array.from({ length: 300 }, (_, i) => `word${i % 50}`).join(' ');
    const r = cli(['generate', '--model', 'weights/tiny', '--prompt', prompt, '--context', '64', '--max-new-tokens', '4', '--temperature', '0', '--stats']);
    expect(r.status, r.stderr).toBe(0);
    const notes = errLines(r.stderr).filter((l) => l.includes('prompt'));
    expect(notes[0]).toMatch(/^wgpu-char: the prompt is \d+ tokens: keeping BOS and its last 59, to leave room for --max-new-tokens 4 in the 64-token context$/);
    expect(notes.filter((l) => l.includes('keeping')).length).toBe(1);
    expect(errLines(r.stderr).some((l) => l.startsWith('prompt 60 tokens, generated 4'))).toBe(true);
  });

  it('chat: a message too long for the context is refused with one line, and the chat goes on', () => {
    const long = Array.from({ length: 5000 }, (_, i) => `word${i % 50}`).join(' ');
    const r = cli(['chat', '--model', 'weights/tiny', '--character', 'Beethoven', '--max-new-tokens', '8', '--temperature', '0'],
      { input: `${long}\nWho are you?\n` });
    expect(r.status, r.stderr).toBe(0);
    const refusals = errLines(r.stderr).filter((l) => l.includes('too long'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(/^wgpu-char: your message is too long: it makes a \d+-token prompt with the character's prompt header, and 504 fit \(the 512-token context less --max-new-tokens 8\); not sent$/);
    const out = r.stdout.split('\n');
    // The refused message is echoed (scripted chat), gets no reply; the next one does.
    expect(out[0].startsWith('Man: word0 word1')).toBe(true);
    expect(out[1]).toBe('Man: Who are you?');
    expect(out[2]).toMatch(/^Beethoven: \S/);
  });
});
