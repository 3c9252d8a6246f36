/** What the route handlers of the server share (src/serve/server.ts builds it), and what they need of a generator. */
import type { GenerateOptions, GenerateResult, Generator } from '../gen/generate.ts';
import type { ChatDefaults } from './openai.ts';
import type { Scheduler } from './scheduler.ts';

/** What the server needs of a Generator (a fake one can stand in for tests). */
export type TextGenerator = Pick<Generator, 'tokenizer' | 'contextLength'> & {
  generate(prompt: string, opts: GenerateOptions): Promise<GenerateResult>;
};

/** What the route handlers share. */
export interface ServeApp {
  modelNames: readonly string[];
  generator: TextGenerator;
  scheduler: Scheduler;
  chatDefaults: ChatDefaults;
  /** When the server started (Unix seconds), the `created` of its model cards. */
  created: number;
}
