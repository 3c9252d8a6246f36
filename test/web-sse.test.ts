/**
 * web/sse.ts, the chat page's reader of a streamed answer, on bodies cut at every byte: events split
 * across reads, a UTF-8 character split across reads, CRLF line ends, comments, several data lines,
 * and a last event without its blank line.
 */
import { describe, expect, it } from 'vitest';
import { sseData } from '../web/sse.ts';

/** A body of `text`'s bytes, delivered in reads of the given sizes (the rest in one last read). */
function bodyOf(text: string, sizes: number[]): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  const reads: Uint8Array[] = [];
  let at = 0;
  for (const n of sizes) {
    if (at >= bytes.length) break;
    reads.push(bytes.slice(at, at + n));
    at += n;
  }
  if (at < bytes.length) reads.push(bytes.slice(at));
  return new ReadableStream({
    pull(controller) {
      const next = reads.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

async function collect(body: ReadableStream<Uint8Array>): Promise<string[]> {
  const out: string[] = [];
  for await (const d of sseData(body)) out.push(d);
  return out;
}

const chunk = (content: string) => JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: null }] });

describe('sseData (web/sse.ts)', () => {
  const events = [chunk('Grüß Gott, '), chunk('ich bin 🎹 Ludwig.'), '[DONE]'];
  const text = events.map((e) => `data: ${e}\n\n`).join('');

  it('gives every payload whole, however the body is cut into reads', async () => {
    const length = new TextEncoder().encode(text).length;
    for (let cut = 1; cut < length; cut++) expect(await collect(bodyOf(text, [cut]))).toEqual(events);
    expect(await collect(bodyOf(text, Array(length).fill(1)))).toEqual(events);
  });

  it('reads CRLF line ends, skips comments and other fields, joins data lines, and keeps a last event without its blank line', async () => {
    const body = ': keep-alive\r\n\r\nevent: message\r\ndata: first\r\ndata:second\r\nid: 7\r\n\r\ndata: [DONE]';
    expect(await collect(bodyOf(body, [5, 9, 3]))).toEqual(['first\nsecond', '[DONE]']);
  });
});
