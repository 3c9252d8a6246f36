/**
 * The client of the chat page (web/chat.html), bundled for the browser by src/serve/web.ts.
 *
 * It reads the page's defaults (the paper's interview setting) from the `#defaults` element, the
 * served model from GET /v1/models, and chats through POST /v1/chat/completions with `stream: true`:
 * the whole history as `messages`, the character's setting as our `character` field, temperature,
 * top_p and max_tokens from the controls, and `stream_options.include_usage` for the token count of
 * the reply. Its speed is that count over the time from sending the request to the usage chunk
 * (queueing and the prompt's prefill included, as a user waits for them).
 *
 * Stop aborts the fetch (the server stops generating at its next piece of text); the text so far
 * stays in the history. Regenerate drops the last reply and asks again for the last user turn.
 * Errors (an error body, or an error event in the stream) are shown with the server's message.
 * The API key, when the server needs one, is kept in localStorage and sent as `Authorization: Bearer`.
 */
import type { PageDefaults } from '../src/serve/web.ts';
import { sseData } from './sse.ts';

const KEY_STORAGE = 'wgpu-char.apiKey';

type Role = 'user' | 'assistant';
interface Message {
  role: Role;
  content: string;
  el: HTMLElement;
}

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`chat page: no #${id}`);
  return el as T;
}

const defaults = JSON.parse(byId('defaults').textContent ?? '') as PageDefaults;

const ui = {
  model: byId<HTMLSelectElement>('model'),
  key: byId<HTMLInputElement>('key'),
  name: byId<HTMLInputElement>('name'),
  known: byId<HTMLDataListElement>('known-characters'),
  fullName: byId<HTMLInputElement>('full-name'),
  location: byId<HTMLInputElement>('location'),
  status: byId<HTMLTextAreaElement>('status'),
  resetCharacter: byId<HTMLButtonElement>('reset-character'),
  temperature: byId<HTMLInputElement>('temperature'),
  temperatureValue: byId<HTMLOutputElement>('temperature-value'),
  topP: byId<HTMLInputElement>('top-p'),
  topPValue: byId<HTMLOutputElement>('top-p-value'),
  maxTokens: byId<HTMLInputElement>('max-tokens'),
  messages: byId<HTMLDivElement>('messages'),
  error: byId<HTMLDivElement>('error'),
  composer: byId<HTMLFormElement>('composer'),
  input: byId<HTMLTextAreaElement>('input'),
  send: byId<HTMLButtonElement>('send'),
  stop: byId<HTMLButtonElement>('stop'),
  regenerate: byId<HTMLButtonElement>('regenerate'),
  clear: byId<HTMLButtonElement>('clear'),
  stats: byId<HTMLSpanElement>('stats'),
};

const history: Message[] = [];
let inFlight: AbortController | null = null;

// ---- settings ----

function setCharacter(c: PageDefaults['character']): void {
  ui.name.value = c.name;
  ui.fullName.value = c.full_name;
  ui.location.value = c.location;
  ui.status.value = c.status;
}

/** The setting of a short name: its known full name (else the name), the interview's place and status. */
function settingOf(name: string): PageDefaults['character'] {
  return { name, full_name: defaults.knownCharacters[name] ?? name, location: defaults.location, status: defaults.statusParts.join(name) };
}

function characterField(): { name: string; full_name?: string; location?: string; status?: string } {
  const name = ui.name.value.trim();
  const part = (s: string) => s.trim() || undefined;
  return { name, full_name: part(ui.fullName.value), location: part(ui.location.value), status: part(ui.status.value) };
}

function showSampling(): void {
  ui.temperatureValue.value = Number(ui.temperature.value).toFixed(2);
  ui.topPValue.value = Number(ui.topP.value).toFixed(2);
}

function authHeaders(): Record<string, string> {
  const key = ui.key.value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// ---- errors ----

function showError(message: string): void {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function hideError(): void {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

/** An error the API answered, with its message. */
class ApiFailure extends Error {}

/** The message of an error answer (`error.message` of the body, else the body's start). */
async function failureOf(r: Response): Promise<ApiFailure> {
  const text = await r.text();
  let message = text.slice(0, 500) || r.statusText;
  try {
    const body = JSON.parse(text);
    const m = body?.error?.message ?? body?.message;
    if (typeof m === 'string') message = m;
  } catch {
    // not JSON: the text itself
  }
  const hint = r.status === 401 ? ' (enter the server\'s API key under Server)' : '';
  return new ApiFailure(`${r.status}: ${message}${hint}`);
}

// ---- the model ----

async function loadModels(): Promise<void> {
  try {
    const r = await fetch('/v1/models', { headers: authHeaders() });
    if (!r.ok) throw await failureOf(r);
    const list = (await r.json()) as { data: { id: string }[] };
    const previous = ui.model.value;
    ui.model.replaceChildren(...list.data.map((m) => new Option(m.id, m.id)));
    if (list.data.some((m) => m.id === previous)) ui.model.value = previous;
    hideError();
  } catch (e) {
    ui.model.replaceChildren();
    showError(`cannot list the models: ${(e as Error).message}`);
  }
  updateButtons();
}

// ---- the chat ----

function addMessage(role: Role, content: string): Message {
  const el = document.createElement('div');
  el.className = `msg ${role}`;
  const speaker = document.createElement('div');
  speaker.className = 'speaker';
  speaker.textContent = role === 'user' ? defaults.userName : ui.name.value.trim();
  const text = document.createElement('div');
  text.className = 'text';
  text.textContent = content;
  el.append(speaker, text);
  ui.messages.append(el);
  const m = { role, content, el };
  history.push(m);
  scrollDown();
  return m;
}

function setText(m: Message, content: string): void {
  m.content = content;
  m.el.querySelector('.text')!.textContent = content;
  scrollDown();
}

function addNote(m: Message, note: string): void {
  const el = document.createElement('div');
  el.className = 'note';
  el.textContent = note;
  m.el.append(el);
}

function removeMessage(m: Message): void {
  const i = history.indexOf(m);
  if (i >= 0) history.splice(i, 1);
  m.el.remove();
}

function scrollDown(): void {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function updateButtons(): void {
  const busy = inFlight !== null;
  ui.send.disabled = busy || !ui.model.value;
  ui.stop.disabled = !busy;
  ui.regenerate.disabled = busy || !ui.model.value || !history.some((m) => m.role === 'user');
}

interface ChatChunk {
  choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
  usage?: { completion_tokens: number };
  error?: { message?: string };
  message?: string;
}

/** Asks for the character's reply to the history, streaming it into a new message. */
async function reply(): Promise<void> {
  hideError();
  const body = {
    model: ui.model.value,
    messages: history.map((m) => ({ role: m.role, content: m.content })),
    character: characterField(),
    temperature: Number(ui.temperature.value),
    top_p: Number(ui.topP.value),
    ...(ui.maxTokens.value ? { max_tokens: Number(ui.maxTokens.value) } : {}),
    stream: true,
    stream_options: { include_usage: true },
  };
  const m = addMessage('assistant', '');
  m.el.classList.add('streaming');
  const controller = new AbortController();
  inFlight = controller;
  updateButtons();
  ui.stats.textContent = '';
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  try {
    const r = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { ...authHeaders(), 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!r.ok) throw await failureOf(r);
    let finish: string | null = null;
    let tokens: number | null = null;
    for await (const data of sseData(r.body!)) {
      if (data === '[DONE]') break;
      const chunk = JSON.parse(data) as ChatChunk;
      if (chunk.error) throw new ApiFailure(chunk.error.message ?? chunk.message ?? data);
      const choice = chunk.choices?.[0];
      if (choice?.delta?.content) setText(m, m.content + choice.delta.content);
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
    const s = seconds();
    ui.stats.textContent = tokens === null ? `${s.toFixed(2)} s` : `${tokens} tokens in ${s.toFixed(2)} s, ${(tokens / s).toFixed(1)} tokens/s`;
    if (finish === 'length') addNote(m, 'cut at max tokens');
    else if (finish === 'abort') addNote(m, 'cut: the server is shutting down');
  } catch (e) {
    if (!history.includes(m)) {
      // cleared meanwhile: nothing to say
    } else if (controller.signal.aborted) {
      ui.stats.textContent = `stopped after ${seconds().toFixed(2)} s`;
      if (m.content) addNote(m, 'stopped');
    } else {
      showError(e instanceof ApiFailure ? e.message : `the request failed: ${(e as Error).message}`);
    }
  } finally {
    m.el.classList.remove('streaming');
    // An empty reply is no turn (the next request would send it as one).
    if (m.content === '') removeMessage(m);
    if (inFlight === controller) inFlight = null;
    updateButtons();
  }
}

function send(): void {
  const text = ui.input.value.trim();
  if (!text || inFlight || !ui.model.value) return;
  ui.input.value = '';
  addMessage('user', text);
  void reply();
}

function regenerate(): void {
  if (inFlight) return;
  while (history.length > 0 && history[history.length - 1].role === 'assistant') removeMessage(history[history.length - 1]);
  if (history.length > 0) void reply();
}

function clear(): void {
  inFlight?.abort(); // its reply() ends on its own, and finds its message gone
  for (const m of [...history]) removeMessage(m);
  ui.stats.textContent = '';
  hideError();
  updateButtons();
}

// ---- start ----

ui.known.replaceChildren(...Object.keys(defaults.knownCharacters).map((name) => new Option(defaults.knownCharacters[name], name)));
setCharacter(defaults.character);
ui.temperature.value = String(defaults.sampling.temperature);
ui.topP.value = String(defaults.sampling.top_p);
ui.maxTokens.value = String(defaults.sampling.max_tokens);
showSampling();
ui.key.value = localStorage.getItem(KEY_STORAGE) ?? '';

// Another name: its full name and status (the place stays as it is).
ui.name.addEventListener('change', () => {
  const s = settingOf(ui.name.value.trim());
  ui.fullName.value = s.full_name;
  ui.status.value = s.status;
});
ui.resetCharacter.addEventListener('click', () => setCharacter(settingOf(ui.name.value.trim() || defaults.character.name)));
ui.temperature.addEventListener('input', showSampling);
ui.topP.addEventListener('input', showSampling);
ui.key.addEventListener('change', () => {
  const key = ui.key.value.trim();
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
  void loadModels();
});
ui.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  send();
});
ui.input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
ui.stop.addEventListener('click', () => inFlight?.abort());
ui.regenerate.addEventListener('click', regenerate);
ui.clear.addEventListener('click', clear);

void loadModels();
