/** Assertions for the project's error contract: a UserError whose one-line message starts with `<file>: `. */
import { expect } from 'vitest';
import { UserError } from '../../src/errors.ts';

function check(err: unknown, file: string, re: RegExp): void {
  expect(err, 'expected a UserError').toBeInstanceOf(UserError);
  const msg = (err as Error).message;
  expect(msg.startsWith(`${file}: `), msg).toBe(true);
  expect(msg).not.toContain('\n');
  expect(msg).toMatch(re);
}

export function expectUserError(fn: () => unknown, file: string, re: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  check(err, file, re);
}

export async function expectUserErrorAsync(p: Promise<unknown>, file: string, re: RegExp): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  check(err, file, re);
}
