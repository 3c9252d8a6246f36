/** What the route handlers of the server share (src/serve/server.ts builds it). */
import type { ChatDefaults } from './openai.ts';
import type { Scheduler, TextGenerator } from './scheduler.ts';

/** What the route handlers share. */
export interface ServeApp {
  modelNames: readonly string[];
  generator: TextGenerator;
  scheduler: Scheduler;
  chatDefaults: ChatDefaults;
  /** When the server started (Unix seconds), the `created` of its model cards. */
  created: number;
}
