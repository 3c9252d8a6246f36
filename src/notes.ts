/**
 * Notes: what a command says once on stderr when it adjusts or ignores a setting (a --context above
 * the model's maximum, an lm_head.weight under tie_word_embeddings, ...), as `wgpu-char: <line>`.
 * Library code takes a Note to call (tests collect them); the commands use the stderr one.
 */
export type Note = (line: string) => void;

export const noteOnStderr: Note = (line) => console.error(`wgpu-char: ${line}`);
