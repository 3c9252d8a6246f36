/**
 * An Ollama `Modelfile` for an exported GGUF, so `ollama create NAME -f Modelfile` gives a chatting
 * character with the prompt `wgpu-char chat` builds (src/gen/chat-prompt.ts): the filled meta
 * prompt as SYSTEM, then the turns as `Name (speaking): text<|eot|>` lines, then `Name (speaking):`
 * for the character to continue; `<|eot|>` (plain text the model learned to write, not a special
 * token) stops it, and the sampling is chat's defaults.
 *
 * Why the prompt ends at `(speaking):` and not at `(` as chat's does: Ollama shows everything the
 * model writes, so the action word is fixed to speaking; the reply starts with the space the model
 * writes after the colon (a prompt ending in a space would tokenise unlike the training text).
 */
import { EOT } from '../data/prompted.ts';
import { chatHeader, type ChatSetting } from '../gen/chat-prompt.ts';

export interface ModelfileOptions {
  /** The FROM line's path: the GGUF file, relative to the Modelfile (Ollama resolves it so). */
  gguf: string;
  setting: ChatSetting;
  userName: string;
  temperature: number;
  topP: number;
}

/** Characters a Go template or a Modelfile's """ block would read as syntax. */
function checkPlain(what: string, s: string): void {
  if (s.includes('{{') || s.includes('}}') || s.includes('"""')) throw new Error(`${what} ${JSON.stringify(s)} contains {{, }} or """`);
}

export function ollamaModelfile(o: ModelfileOptions): string {
  const name = o.setting.shortName;
  for (const [what, s] of [['name', name], ['user name', o.userName], ['setting', chatHeader(o.setting)]] as const) checkPlain(what, s);
  // The header's "\n\n" goes in the template: a SYSTEM block's trailing blank lines are not kept reliably.
  const system = chatHeader(o.setting).replace(/\n\n$/, '');
  const template = [
    '{{ if .System }}{{ .System }}\n\n{{ end }}',
    '{{- range .Messages }}',
    `{{- if eq .Role "user" }}${o.userName} (speaking): {{ .Content }}${EOT}\n`,
    `{{ else if eq .Role "assistant" }}${name} (speaking): {{ .Content }}${EOT}\n`,
    '{{ end }}',
    '{{- end }}',
    `${name} (speaking):`,
  ].join('');
  return [
    `# ${name}, exported by wgpu-char: ollama create ${name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-')} -f Modelfile`,
    `FROM ${o.gguf.startsWith('/') || o.gguf.startsWith('.') ? o.gguf : `./${o.gguf}`}`,
    `SYSTEM """${system}"""`,
    `TEMPLATE """${template}"""`,
    `PARAMETER stop ${EOT}`,
    `PARAMETER temperature ${o.temperature}`,
    `PARAMETER top_p ${o.topP}`,
    '',
  ].join('\n');
}
