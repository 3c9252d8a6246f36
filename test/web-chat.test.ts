/**
 * The chat page of `wgpu-char serve` (GET /: src/serve/web.ts, web/chat.ts) in a real browser:
 * Debian's chromium (`/usr/bin/chromium`, or CHROMIUM_PATH), headless, driven by puppeteer-core (no
 * browser download), against the server over a scripted fake generator (weights/tiny's tokenizer,
 * the character's replies written piece by piece through onText; no GPU).
 *
 * With CI=true a missing browser fails this file (.ci/run installs chromium); elsewhere it is skipped
 * with the reason. With UPDATE_SCREENSHOTS=1 the first test writes its screenshot to
 * docs/serve-web.png (the README's picture); otherwise to a temporary file, so that running the
 * tests leaves the tree as it was.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '../src/data/tokenizer.ts';
import { INTERVIEW_LOCATION, INTERVIEW_SAMPLING, interviewStatus } from '../src/eval/interview.ts';
import { KNOWN_CHARACTERS } from '../src/gen/characters.ts';
import type { GenerateOptions, GenerateResult } from '../src/gen/generate.ts';
import { startServer, type RunningServer, type ServerOptions } from '../src/serve/server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser && process.env.CI === 'true') {
  throw new Error(`CI=true but no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium; .ci/run does) or set CHROMIUM_PATH`);
}
if (!haveBrowser) console.warn(`skipping the chat page tests: no browser at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A generator that writes the next of `replies` piece by piece (the action head first, as a
 * character model does), one piece every PIECE_MS; after `hold()`, the next reply waits after its
 * second piece until `release()`. Records each call's prompt and options, and whether its
 * generation ran to the end or was cut (onText threw: the client had gone).
 */
const PIECE_MS = 15;
class ScriptedGenerator {
  readonly contextLength = 512;
  readonly calls: { prompt: string; opts: GenerateOptions; outcome?: 'done' | 'cut' }[] = [];
  private gate: Promise<void> | null = null;
  private open = () => {};
  constructor(
    readonly tokenizer: Tokenizer,
    private readonly replies: string[][],
  ) {}

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.gate = null;
    this.open();
  }

  async generate(prompt: string, opts: GenerateOptions): Promise<GenerateResult> {
    const call: (typeof this.calls)[number] = { prompt, opts };
    this.calls.push(call);
    const pieces = this.replies[this.calls.length - 1] ?? ['speaking): ', 'No more lines in the script.'];
    const gate = this.gate;
    try {
      for (const [i, piece] of pieces.entries()) {
        if (i === 2 && gate) await gate;
        await sleep(PIECE_MS);
        opts.onText?.(piece);
      }
    } catch (e) {
      call.outcome = 'cut';
      throw e;
    }
    call.outcome = 'done';
    return { text: pieces.join(''), tokens: [], promptTokens: 40, newTokens: pieces.length, finishReason: 'stop', prefillSeconds: 0, decodeSeconds: 0 };
  }
}

const REPLIES = [
  ['speaking): ', 'I was born in Bonn, ', 'in December of 1770. ', 'My grandfather was Kapellmeister to the Elector there.'],
  ['speaking): ', 'In Bonn, ', 'on the Rhine, ', 'in the winter of 1770. My father taught me the clavier before I could read.'],
  ['speaking): ', 'Ah, the Ninth! ', 'I set Schiller\'s ode ', 'for a chorus, and the whole hall rose.'],
  ['speaking): ', 'Bach, always Bach. ', 'The Well-Tempered Clavier ', 'has been my daily bread since I was eleven.'],
];
/** The reply as the page shows it: after the action head, trimmed (src/gen/chat-prompt.ts ReplyText). */
const shown = (pieces: string[]) => pieces.slice(1).join('').trim();

let tokenizer: Tokenizer;
let browser: Browser;
beforeAll(async () => {
  if (!haveBrowser) return;
  tokenizer = await Tokenizer.load('weights/tiny/tokenizer.model');
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});
afterAll(async () => {
  await browser?.close();
});

const servers: RunningServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function serve(generator: ScriptedGenerator, more: Partial<ServerOptions> = {}): Promise<{ server: RunningServer; origin: string }> {
  const server = await startServer({ generator, modelName: 'fake', port: 0, ...more });
  servers.push(server);
  return { server, origin: server.url.replace(/\/v1$/, '') };
}

/** A page with the chat requests' bodies recorded, and the page's script errors. */
async function openPage(origin: string): Promise<{ page: Page; bodies: any[]; pageErrors: string[] }> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 820 });
  const bodies: any[] = [];
  const pageErrors: string[] = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().endsWith('/v1/chat/completions')) bodies.push(JSON.parse(r.postData() ?? 'null'));
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(origin + '/');
  return { page, bodies, pageErrors };
}

/** The speaker and text of every message in the chat, in order. */
function transcript(page: Page): Promise<{ role: string; speaker: string; text: string; note: string; streaming: boolean }[]> {
  return page.$$eval('#messages .msg', (els) =>
    els.map((el) => ({
      role: el.classList.contains('user') ? 'user' : 'assistant',
      speaker: el.querySelector('.speaker')!.textContent!,
      text: el.querySelector('.text')!.textContent!,
      note: el.querySelector('.note')?.textContent ?? '',
      streaming: el.classList.contains('streaming'),
    })),
  );
}

/** Waits until the last message's text is `text`. */
async function lastTextIs(page: Page, text: string): Promise<void> {
  await page.waitForFunction((t) => [...document.querySelectorAll('#messages .msg .text')].at(-1)?.textContent === t, { timeout: 10_000 }, text);
}

async function ask(page: Page, question: string): Promise<void> {
  await page.type('#input', question);
  await page.keyboard.press('Enter');
}

/** Sets an input's value as a user would (its input and change events fire). */
async function setValue(page: Page, selector: string, value: string): Promise<void> {
  await page.$eval(selector, (el, v) => {
    (el as HTMLInputElement).value = v;
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

const isDisabled = (page: Page, selector: string) => page.$eval(selector, (el) => (el as HTMLButtonElement).disabled);

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > ms) throw new Error('until: timed out');
    await sleep(10);
  }
}

describe.skipIf(!haveBrowser)('the chat page (GET /)', () => {
  it('streams a reply, regenerates it, sends the controls\' temperature, and stops a reply mid-stream', async () => {
    const generator = new ScriptedGenerator(tokenizer, REPLIES);
    const { server, origin } = await serve(generator);
    const { page, bodies, pageErrors } = await openPage(origin);

    // The interview defaults, from the project's constants; the model from GET /v1/models.
    await page.waitForFunction(() => (document.getElementById('model') as HTMLSelectElement).value === 'fake');
    const fields = await page.evaluate(() =>
      Object.fromEntries(['name', 'full-name', 'location', 'status', 'temperature', 'top-p', 'max-tokens'].map((id) => [id, (document.getElementById(id) as HTMLInputElement).value])),
    );
    expect(fields).toEqual({
      name: 'Beethoven',
      'full-name': KNOWN_CHARACTERS.Beethoven,
      location: INTERVIEW_LOCATION,
      status: interviewStatus('Beethoven'),
      temperature: String(INTERVIEW_SAMPLING.temperature),
      'top-p': String(INTERVIEW_SAMPLING.topP),
      'max-tokens': String(INTERVIEW_SAMPLING.maxTokens),
    });

    // 1. Send: the reply appears while it streams, then whole, with its tokens/s.
    generator.hold();
    await ask(page, 'Where were you born?');
    await lastTextIs(page, 'I was born in Bonn,');
    expect(await transcript(page)).toEqual([
      { role: 'user', speaker: 'Man', text: 'Where were you born?', note: '', streaming: false },
      { role: 'assistant', speaker: 'Beethoven', text: 'I was born in Bonn,', note: '', streaming: true },
    ]);
    expect(await isDisabled(page, '#stop')).toBe(false);
    expect(await isDisabled(page, '#send')).toBe(true);
    generator.release();
    await lastTextIs(page, shown(REPLIES[0]));
    await page.waitForFunction(() => document.getElementById('stop')!.hasAttribute('disabled'));
    expect(await page.$eval('#stats', (el) => el.textContent)).toMatch(new RegExp(`^${REPLIES[0].length} tokens in \\d+\\.\\d\\d s, \\d+\\.\\d tokens/s$`));
    expect(bodies[0]).toEqual({
      model: 'fake',
      messages: [{ role: 'user', content: 'Where were you born?' }],
      character: { name: 'Beethoven', full_name: KNOWN_CHARACTERS.Beethoven, location: INTERVIEW_LOCATION, status: interviewStatus('Beethoven') },
      temperature: INTERVIEW_SAMPLING.temperature,
      top_p: INTERVIEW_SAMPLING.topP,
      max_tokens: INTERVIEW_SAMPLING.maxTokens,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(generator.calls[0].prompt).toContain(interviewStatus('Beethoven'));
    expect(generator.calls[0].prompt).toContain('Man (speaking): Where were you born?');
    expect(generator.calls[0].opts).toMatchObject({ temperature: INTERVIEW_SAMPLING.temperature, topP: INTERVIEW_SAMPLING.topP, maxNewTokens: INTERVIEW_SAMPLING.maxTokens });

    // 2. Regenerate: the same history asked again, the new reply in place of the old one.
    await page.click('#regenerate');
    await lastTextIs(page, shown(REPLIES[1]));
    expect((await transcript(page)).map((m) => m.text)).toEqual(['Where were you born?', shown(REPLIES[1])]);
    expect(bodies[1].messages).toEqual(bodies[0].messages);
    expect(generator.calls[1].prompt).toBe(generator.calls[0].prompt);

    // 3. Stop mid-stream: the text so far stays; the server stops generating at its next piece.
    generator.hold();
    await ask(page, 'What did the Ninth mean to you?');
    await lastTextIs(page, 'Ah, the Ninth!');
    await page.click('#stop');
    await page.waitForFunction(() => /^stopped after/.test(document.getElementById('stats')!.textContent!));
    await until(() => server.pendingRequests() === 0); // the server has seen the connection close
    generator.release();
    await until(() => generator.calls[2].outcome !== undefined);
    expect(generator.calls[2].outcome).toBe('cut');
    expect((await transcript(page)).at(-1)).toEqual({ role: 'assistant', speaker: 'Beethoven', text: 'Ah, the Ninth!', note: 'stopped', streaming: false });
    expect(await isDisabled(page, '#send')).toBe(false);

    // 4. Another temperature on the slider: the next request carries it, and the generator gets it.
    await setValue(page, '#temperature', '1.3');
    expect(await page.$eval('#temperature-value', (el) => el.textContent)).toBe('1.30');
    await ask(page, 'What music do you play for yourself?');
    await lastTextIs(page, shown(REPLIES[3]));
    expect(bodies[3].temperature).toBe(1.3);
    expect(generator.calls[3].opts.temperature).toBe(1.3);
    // The stopped reply is a turn of the history as it was shown.
    expect(bodies[3].messages.map((m: { content: string }) => m.content)).toEqual([
      'Where were you born?', shown(REPLIES[1]), 'What did the Ninth mean to you?', 'Ah, the Ninth!', 'What music do you play for yourself?',
    ]);
    await page.waitForFunction(() => /tokens\/s$/.test(document.getElementById('stats')!.textContent!));

    const shotDir = process.env.UPDATE_SCREENSHOTS === '1' ? null : mkdtempSync(path.join(tmpdir(), 'web-chat-'));
    const shot = shotDir ? path.join(shotDir, 'serve-web.png') : path.join(import.meta.dirname, '..', 'docs', 'serve-web.png');
    await page.screenshot({ path: shot as `${string}.png` });
    expect(existsSync(shot)).toBe(true);
    if (shotDir) rmSync(shotDir, { recursive: true });

    // 5. Clear: an empty chat, nothing to regenerate.
    await page.click('#clear');
    expect(await transcript(page)).toEqual([]);
    expect(await isDisabled(page, '#regenerate')).toBe(true);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('asks for the API key, remembers it, and shows the API\'s errors', async () => {
    const generator = new ScriptedGenerator(tokenizer, REPLIES);
    const { origin, server } = await serve(generator, { apiKeys: ['sesame'] });
    const { page, bodies, pageErrors } = await openPage(origin);
    await page.evaluate(() => localStorage.clear());
    await page.reload();

    // The page is public, the API is not: the models' 401 is shown, with where the key goes.
    await page.waitForFunction(() => !document.getElementById('error')!.hidden);
    const unauthorized = await (await fetch(server.url + '/models')).json();
    expect(await page.$eval('#error', (el) => el.textContent)).toBe(`cannot list the models: 401: ${unauthorized.error.message} (enter the server's API key under Server)`);
    expect(await isDisabled(page, '#send')).toBe(true);

    await page.type('#key', 'sesame');
    await page.keyboard.press('Tab'); // the change event
    await page.waitForFunction(() => (document.getElementById('model') as HTMLSelectElement).value === 'fake');
    expect(await page.$eval('#error', (el) => (el as HTMLElement).hidden)).toBe(true);
    expect(await page.evaluate(() => localStorage.getItem('wgpu-char.apiKey'))).toBe('sesame');

    // A request the API refuses (max_tokens over the context): its message, and no empty reply.
    await setValue(page, '#max-tokens', String(generator.contextLength + 1));
    await ask(page, 'Where were you born?');
    await page.waitForFunction(() => !document.getElementById('error')!.hidden);
    const refused = await fetch(server.url + '/chat/completions', {
      method: 'POST',
      headers: { Authorization: 'Bearer sesame', 'Content-Type': 'application/json' },
      body: JSON.stringify(bodies[0]),
    });
    expect(refused.status).toBe(400);
    expect(await page.$eval('#error', (el) => el.textContent)).toBe(`400: ${(await refused.json()).error.message}`);
    expect((await transcript(page)).map((m) => m.role)).toEqual(['user']);
    expect(generator.calls).toHaveLength(0);

    // Regenerate asks the refused user turn again.
    await setValue(page, '#max-tokens', String(INTERVIEW_SAMPLING.maxTokens));
    await page.click('#regenerate');
    await lastTextIs(page, shown(REPLIES[0]));
    expect((await transcript(page)).map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(await page.$eval('#error', (el) => (el as HTMLElement).hidden)).toBe(true);

    // Reloaded, the page has the key it remembered.
    await page.reload();
    expect(await page.$eval('#key', (el) => (el as HTMLInputElement).value)).toBe('sesame');
    await page.waitForFunction(() => (document.getElementById('model') as HTMLSelectElement).value === 'fake');
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});
