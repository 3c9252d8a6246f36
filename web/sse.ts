/**
 * The `data:` payloads of a server-sent event stream read with fetch (EventSource cannot POST): one
 * string per event, its data lines joined by "\n", in order; comments and other fields are skipped.
 * `[DONE]` is yielded like any payload (the caller stops on it). An aborted fetch rejects the next read.
 */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let pending = '';
  let data: string[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const raw of lines) {
        const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
        if (line === '') {
          if (data.length > 0) yield data.join('\n');
          data = [];
          continue;
        }
        const colon = line.indexOf(':');
        if (colon === 0) continue; // a comment
        const field = colon < 0 ? line : line.slice(0, colon);
        if (field === 'data') data.push(colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, ''));
      }
    }
    pending += decoder.decode();
    // A stream may end without the blank line after its last event.
    if (pending.startsWith('data:')) data.push(pending.slice(5).replace(/^ /, ''));
    if (data.length > 0) yield data.join('\n');
  } finally {
    // Stopping early (at [DONE]) or on an error: let go of the rest of the body.
    reader.cancel().catch(() => {});
  }
}
