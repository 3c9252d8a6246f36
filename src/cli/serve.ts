/**
 * `wgpu-char serve`: loads a model and serves it with the OpenAI-compatible API of src/serve/server.ts
 * until SIGINT/SIGTERM.
 *
 *   wgpu-char serve --model runs/beethoven --model-name Beethoven-end --character Beethoven
 *   wgpu-char data scenes ... --base-url http://127.0.0.1:8000/v1 --model Beethoven-end
 *
 * Batching: requests run at once through a ContinuousBatcher (src/gen/continuous.ts): up to
 * --max-batch generations hold a slot of the engine's KV cache, each step decodes one token of each
 * and prefills --prefill-chunk prompt tokens of one; --max-queue more wait for a slot, and beyond
 * that a request is answered 429 with Retry-After. The engine is built in ONE place,
 * `createSlotEngine` below.
 *
 * Stopping: the first SIGTERM or SIGINT drains (server.ts `drain`): new requests get 503, the ones
 * it has may finish for up to --drain-timeout seconds, the rest are cut (a stream ends with
 * finish_reason "abort" and [DONE]); then the command exits 0. A second signal cuts them at once.
 *
 * API keys: --api-key (repeatable), else WGPU_CHAR_API_KEY (comma-separated). The option wins over
 * the variable rather than adding to it, as options do over the environment everywhere, so that
 * `--api-key` on one server never also lets in a key exported for another. The variable is the
 * safer way: an option's value is visible to every user of the machine in `ps`.
 */
import type { Command } from 'commander';
import path from 'node:path';
import { UserError } from '../errors.ts';
import { fullNameOf } from '../gen/characters.ts';
import type { SlotEngine } from '../gen/engine.ts';
import type { LlamaModel } from '../model/llama.ts';
import { noteOnStderr, type Note } from '../notes.ts';
import { apiKeyProblem, apiKeysFromEnv, isLoopbackHost } from '../serve/auth.ts';
import { contextOption, dtypeOption, integerOption, maxBatchOption, numberOption, prefillChunkOption, repeatedStringOption, type Dtype, adapterOption } from './options.ts';

/** The environment variable with the API keys (comma-separated), used when no --api-key is given. */
export const API_KEY_ENV = 'WGPU_CHAR_API_KEY';

interface ServeCliOptions {
  adapter?: string;
  model: string;
  host: string;
  port: number;
  modelName?: string[];
  dtype: Dtype;
  context?: number;
  character?: string;
  fullName?: string;
  userName: string;
  quiet?: boolean;
  apiKey?: string[];
  drainTimeout: number;
  maxBatch: number;
  prefillChunk: number;
  maxQueue: number;
}

/** What the engine of `serve` is built from: slots (--max-batch), KV-cache rows per slot (the resolved context), prompt tokens per step. */
export interface SlotEngineSettings {
  slots: number;
  contextLength: number;
  prefillChunk: number;
}

/**
 * serve's engine: `slots` KV caches of `contextLength` rows (src/gen/batch-engine.ts); its memory,
 * from the planner (planServing, the layout the engine allocates), said once on `note`.
 */
async function createSlotEngine(model: LlamaModel, settings: SlotEngineSettings, note: Note): Promise<SlotEngine> {
  const { BatchEngine } = await import('../gen/batch-engine.ts');
  const { planServing, formatBytes } = await import('../train/plan.ts');
  const engine = await BatchEngine.create(model, settings);
  const plan = planServing(model.cfg, { dtype: model.dtype, context: settings.contextLength, lora: model.adapter?.config, maxBindingBytes: model.gpu.maxBindingBytes, slots: settings.slots, prefillChunk: settings.prefillChunk });
  note(`${settings.slots} slots × ${settings.contextLength} tokens: KV cache ${formatBytes(plan.kv_cache)}, ${formatBytes(plan.total)} in all with the weights (wgpu-char plan --max-batch); prompts prefill ${settings.prefillChunk} tokens a step`);
  return engine;
}

/** The API keys of --api-key, else of WGPU_CHAR_API_KEY; [] for none. An unusable key is a UserError naming where it came from. */
export function resolveApiKeys(optionKeys: readonly string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  let keys: string[];
  let source: string;
  if (optionKeys && optionKeys.length > 0) {
    keys = [...optionKeys];
    source = '--api-key';
  } else {
    const value = env[API_KEY_ENV];
    // Set but empty is "unset" (the usual way to clear a variable); set to only commas and spaces is a mistake.
    if (value === undefined || value === '') return [];
    keys = apiKeysFromEnv(value);
    source = API_KEY_ENV;
    if (keys.length === 0) throw new UserError(`${API_KEY_ENV}: no key in it (give keys separated by commas, or unset it)`);
  }
  for (const k of keys) {
    const problem = apiKeyProblem(k);
    if (problem) throw new UserError(`${source}: ${problem}`);
  }
  return keys;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('OpenAI-compatible HTTP API over a model (as FastChat\'s openai_api_server): /v1/models, /v1/completions, /v1/chat/completions, /metrics; requests batched')
    .requiredOption('--model <dir>', 'HF LLaMA directory (config.json, tokenizer.model, *.safetensors)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .addOption(integerOption('--port <n>', 'port (0 = any free port)', { min: 0, max: 65535 }, 8000))
    .addOption(repeatedStringOption('--model-name <name>', 'name clients use as `model` (repeat for aliases; default: the directory\'s basename)'))
    .addOption(dtypeOption())
    .addOption(adapterOption())
    .addOption(contextOption())
    .option('--character <name>', 'character (short name) for chat requests that name none, neither by a `character` field nor by the system message\'s meta prompt')
    .option('--full-name <name>', 'full name of --character for the meta prompt (known for the paper\'s characters)')
    .option('--user-name <name>', 'speaker name of user messages in the chat prompt', 'Man')
    .option('--quiet', 'no per-request log lines on stderr')
    .addOption(repeatedStringOption('--api-key <key>', `require "Authorization: Bearer <key>" on every route but GET /health (repeat for several keys; default: the comma-separated keys in $${API_KEY_ENV}, which unlike this option is not visible in \`ps\`)`))
    .addOption(maxBatchOption())
    .addOption(prefillChunkOption())
    .addOption(integerOption('--max-queue <n>', 'generations that may wait for a slot; beyond them a request is answered 429 with Retry-After', { min: 0 }, 64))
    .addOption(numberOption('--drain-timeout <s>', 'on SIGTERM/SIGINT, seconds the requests in progress and queued may take to finish before they are cut', { min: 0 }, 30))
    .action(async (opts: ServeCliOptions) => {
      if (opts.fullName !== undefined && opts.character === undefined) throw new UserError('--full-name needs --character');
      // Checked before the model loads, as every input the command can check up front.
      const apiKeys = resolveApiKeys(opts.apiKey);
      // GPU code loads only when the command runs: `--help` and `data` need none of it.
      const { loadModelDir } = await import('../formats/model-dir.ts');
      const { ContinuousBatcher } = await import('../gen/continuous.ts');
      const { resolveContext } = await import('../gen/context.ts');
      const { eosTokenIds } = await import('../model/config.ts');
      const { startServer } = await import('../serve/server.ts');
      const { model, tokenizer } = await loadModelDir(opts.model, opts.dtype, { adapter: opts.adapter });
      const contextLength = resolveContext(opts.context, model.maxPositions, noteOnStderr);
      const engine = await createSlotEngine(model, { slots: opts.maxBatch, contextLength, prefillChunk: opts.prefillChunk }, noteOnStderr);
      const generator = new ContinuousBatcher(engine, tokenizer, { maxQueue: opts.maxQueue, maxPositions: model.maxPositions, eosIds: eosTokenIds(model.cfg) });
      const modelName = opts.modelName ?? [path.basename(path.resolve(opts.model))];

      let server;
      try {
        server = await startServer({
          generator,
          modelName,
          host: opts.host,
          port: opts.port,
          character: opts.character ? { name: opts.character, full_name: fullNameOf(opts.character, opts.fullName) } : undefined,
          userName: opts.userName,
          log: opts.quiet ? undefined : (line) => console.error(`wgpu-char: ${line}`),
          apiKeys,
        });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') throw new UserError(`${opts.host}:${opts.port}: address already in use (give another --port)`);
        if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') throw new UserError(`${opts.host}:${opts.port}: cannot listen there (${code})`);
        throw e;
      }
      // Before the "serving" line, so that whoever waits for that line has seen the warning too.
      if (apiKeys.length === 0 && !isLoopbackHost(opts.host)) {
        console.error(`wgpu-char: warning: listening on ${opts.host} without an API key: anyone who can reach this address can use the model (give --api-key or ${API_KEY_ENV})`);
      }
      const auth = apiKeys.length > 0 ? `; ${apiKeys.length} API key(s) required` : '';
      // This line is also how scripts (and test/serve-signals.test.ts) learn the port of --port 0.
      console.error(`wgpu-char: serving ${modelName.join(', ')} (context ${generator.contextLength}) at ${server.url}${auth}; ${engine.slots} generation(s) at once, ${opts.maxQueue} queued; Ctrl-C to stop`);

      // The command ends (and src/cli/main.ts exits the process, 0) once a signal has drained the server.
      const drainMs = Math.round(opts.drainTimeout * 1000);
      await new Promise<void>((resolve, reject) => {
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          signals++;
          if (signals === 1) {
            const pending = server.pendingRequests();
            console.error(
              `wgpu-char: ${signal}: draining: ${pending} request(s) in progress or queued may finish for up to ${opts.drainTimeout} s; new requests get 503; ${signal} again to cut them now`,
            );
            server.drain(drainMs).then((report) => {
              const cut = report.aborted > 0 ? `, ${report.aborted} cut at the drain timeout` : '';
              console.error(`wgpu-char: stopped (${report.pending} request(s) were pending${cut})`);
              resolve();
            }, reject);
          } else {
            console.error(`wgpu-char: ${signal} again: cutting the requests left now`);
            void server.drain(0);
          }
        };
        // `on`, not `once`: a second signal must reach us too, not the default handler (which would exit 130 mid-drain).
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      generator.destroy();
    });
}
