/** The tests' client side of serve's streamed answers (SSE `data:` events) and their polling helpers. */
import { expect } from 'vitest';

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The parsed `data:` events of an SSE body, [DONE] as the string. */
export function events(text: string): any[] {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6))
    .map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
}

/**
 * POSTs `body` with `stream: true` to `url` and resolves once its first event arrived, with a
 * promise of all its events (wrapped: an async function returning a bare promise would wait for it).
 */
export async function startStream(url: string, body: object, headers: Record<string, string> = {}): Promise<{ events: Promise<any[]> }> {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify({ ...body, stream: true }) });
  expect(r.status).toBe(200);
  const reader = r.body!.getReader();
  const decoder = new TextDecoder();
  let text = decoder.decode((await reader.read()).value, { stream: true });
  const all = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return events(text);
      text += decoder.decode(value, { stream: true });
    }
  })();
  return { events: all };
}

/** Waits until `cond()` holds (polling), failing after `ms`. */
export async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error('until: timed out');
    await sleep(2);
  }
}
