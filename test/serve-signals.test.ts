/**
 * `wgpu-char serve` as a process (bin/wgpu-char.js over weights/tiny): SIGTERM drains it (new
 * requests 503, the ones it has finish, or are cut with finish_reason "abort" when the drain time is
 * up), then it exits 0; the API-key environment variable and the warning for a non-loopback host
 * without a key. The drain's details without signals: test/serve-lifecycle.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { gpu } from './util/gpu.ts';
import { startStream } from './util/sse-client.ts';

interface Served {
  child: ChildProcess;
  /** http://127.0.0.1:<port>/v1, whatever host it listens on. */
  url: string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts `serve` and resolves once it printed the URL it serves at (the line `--port 0` scripts read). */
async function startServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const childEnv = { ...process.env, ...env };
  if (!('WGPU_CHAR_API_KEY' in env)) delete childEnv.WGPU_CHAR_API_KEY;
  const child = spawn(process.execPath, ['bin/wgpu-char.js', 'serve', '--model', 'weights/tiny', '--port', '0', ...args], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let stderr = '';
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /serving .* at http:\/\/\S+:(\d+)\/v1/.exec(stderr);
      if (m) resolve(`http://127.0.0.1:${m[1]}/v1`);
    });
    void exit.then(() => reject(new Error(`serve exited before listening:\n${stderr}`)));
  });
  return { child, url, stderr: () => stderr, exit };
}

const STREAM = { model: 'tiny', prompt: 'Hello', max_tokens: 400, temperature: 0 }; // greedy: ~170 tokens before EOS

describe.skipIf(!gpu)('serve stops on SIGTERM without losing requests', () => {
  it('drains: the stream and the queued request finish, a new request gets 503, exit 0; warns on 0.0.0.0 without a key', async () => {
    // One slot: the second request waits in the queue behind the stream.
    const s = await startServe(['--host', '0.0.0.0', '--drain-timeout', '30', '--max-batch', '1']);
    expect(s.stderr()).toMatch(/warning: listening on 0\.0\.0\.0 without an API key/);
    const stream = await startStream(s.url + '/completions', STREAM);
    const queued = fetch(s.url + '/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...STREAM, max_tokens: 5 }) });
    await new Promise((resolve) => setTimeout(resolve, 500)); // the queued request has arrived
    s.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const late = await fetch(s.url + '/models');
    expect(late.status).toBe(503);
    expect(Number(late.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    const evs = (await stream.events) as any[];
    expect(evs.at(-1)).toBe('[DONE]');
    expect(['stop', 'length']).toContain(evs.at(-2).choices[0].finish_reason);
    const q = await queued;
    expect(q.status).toBe(200);
    expect((await q.json()).choices[0].finish_reason).toBe('length');
    expect(await s.exit).toEqual({ code: 0, signal: null });
    expect(s.stderr()).toMatch(/SIGTERM: draining: 2 request\(s\) in progress or queued may finish for up to 30 s/);
    expect(s.stderr()).toMatch(/stopped \(2 request\(s\) were pending\)/);
  }, 120_000);

  it('cuts what is left at --drain-timeout: the stream ends with finish_reason "abort" and [DONE], exit 0; WGPU_CHAR_API_KEY keys', async () => {
    const s = await startServe(['--drain-timeout', '0'], { WGPU_CHAR_API_KEY: 'k1, k2' });
    expect(s.stderr()).toMatch(/2 API key\(s\) required/);
    expect(s.stderr()).not.toMatch(/warning/);
    expect((await fetch(s.url + '/models')).status).toBe(401);
    expect((await fetch(s.url.replace(/\/v1$/, '/health'))).status).toBe(200);
    const stream = await startStream(s.url + '/completions', STREAM, { Authorization: 'Bearer k2' });
    s.child.kill('SIGTERM');
    const evs = (await stream.events) as any[];
    expect(evs.at(-1)).toBe('[DONE]');
    expect(evs.at(-2)).toMatchObject({ object: 'text_completion', choices: [{ index: 0, text: '', finish_reason: 'abort' }] });
    expect(evs.slice(0, -2).every((e) => e.choices[0].finish_reason === null)).toBe(true);
    expect(await s.exit).toEqual({ code: 0, signal: null });
    expect(s.stderr()).toMatch(/stopped \(1 request\(s\) were pending, 1 cut at the drain timeout\)/);
  }, 120_000);
});

describe('serve refuses bad API keys up front', () => {
  it('an unusable key is one line before the model loads (no GPU needed)', async () => {
    const child = spawn(process.execPath, ['bin/wgpu-char.js', 'serve', '--model', 'weights/tiny', '--port', '0'], { env: { ...process.env, WGPU_CHAR_API_KEY: ' , ' }, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toBe('wgpu-char: WGPU_CHAR_API_KEY: no key in it (give keys separated by commas, or unset it)\n');
  }, 60_000);
});
