/**
 * An error caused by the user's input or environment (bad file, wrong shape, unreachable API).
 * The CLI prints its message as one line, without a stack trace. The message names the file (or
 * endpoint) and the problem, e.g. `weights/tiny/model.safetensors: truncated (header says 4096 bytes, file has 100)`.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}
