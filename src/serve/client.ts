/** Noticing that the client of a response has gone away (closed its connection before the answer was complete). */
import type { ServerResponse } from 'node:http';

/** Thrown to stop work for a client that has closed its connection (it is logged, not answered). */
export class ClientGone extends Error {}

/** Whether the client of one response is still there. */
export class Client {
  private gone = false;
  constructor(res: ServerResponse) {
    res.on('close', () => {
      if (!res.writableFinished) this.gone = true;
    });
  }
  /** Throws ClientGone once the connection closed before the answer was complete. */
  ensurePresent(): void {
    if (this.gone) throw new ClientGone();
  }
}
