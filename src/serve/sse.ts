/**
 * Server-sent events as OpenAI's streaming API sends them: `data: <chunk JSON>\n\n` per event, then
 * `data: [DONE]\n\n`. An error after the stream has started is one last event carrying the error
 * object (its `error` key makes the openai client raise it), then the end marker.
 */
import type { ServerResponse } from 'node:http';
import type { Client } from './client.ts';

const DONE = '[DONE]';

/** The event stream of one response. */
export class EventStream {
  constructor(
    private readonly res: ServerResponse,
    private readonly client: Client,
  ) {}

  /** Sends the 200 header now, so that the client sees the stream open before the first event. */
  open(): void {
    this.res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    this.res.flushHeaders();
  }

  /** One event; throws ClientGone once the client has left, which stops the generation feeding it. */
  send(chunk: unknown): void {
    this.write(JSON.stringify(chunk));
  }

  /** The end marker, and the end of the response. */
  end(): void {
    this.write(DONE);
    this.res.end();
  }

  private write(data: string): void {
    this.client.ensurePresent();
    this.res.write(`data: ${data}\n\n`);
  }
}

/** Ends a started stream with an error event and the end marker (nothing if it is already over). */
export function endStreamWithError(res: ServerResponse, error: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  res.write(`data: ${JSON.stringify(error)}\n\n`);
  res.end(`data: ${DONE}\n\n`);
}
