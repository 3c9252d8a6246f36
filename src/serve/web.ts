/**
 * The chat page of `wgpu-char serve` (FastChat's web UI, ours): GET / answers web/chat.html with
 * the page's defaults filled in, GET /web/chat.css the style sheet, GET /web/chat.js the client
 * (web/chat.ts, bundled by esbuild on the first request and kept in memory; a failed build is
 * answered 500 and tried again on the next request). All three are public, like /health: the page
 * has no secret, and asks for the API key itself when the server needs one (it then sends it as
 * `Authorization: Bearer` to the /v1 endpoints, which check it as for any client).
 *
 * The defaults are the paper's interview setting (src/eval/interview.ts: the coffee shop in the
 * afternoon, the interview status, the interviews' sampling), with the character of
 * `serve --character` when there is one, else the first of the paper's characters. They go into the
 * page as one JSON script element, read by the client at start (`PageDefaults`).
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { INTERVIEW_LOCATION, INTERVIEW_SAMPLING, INTERVIEWER_ROLE, interviewStatus } from '../eval/interview.ts';
import { KNOWN_CHARACTERS } from '../gen/characters.ts';
import type { Exchange, Route } from './http.ts';
import type { ServeApp } from './app.ts';

const WEB_DIR = new URL('../../web/', import.meta.url);

/** What the page starts with (web/chat.ts reads it from the `#defaults` script element). */
export interface PageDefaults {
  character: { name: string; full_name: string; location: string; status: string };
  /** Short name -> full name, for the name field's suggestions and to fill the full name in. */
  knownCharacters: Record<string, string>;
  location: string;
  /** The interview status of a short name is these parts joined by the name. */
  statusParts: string[];
  /** The speaker name the server gives the user's turns (the paper's interviewer). */
  userName: string;
  sampling: { temperature: number; top_p: number; max_tokens: number };
}

export function pageDefaults(app: ServeApp): PageDefaults {
  const given = app.chatDefaults.character;
  const name = given?.name ?? Object.keys(KNOWN_CHARACTERS)[0];
  // A name that cannot occur in the status text marks where the name goes.
  const slot = '\u0000';
  const statusParts = interviewStatus(slot).split(slot);
  return {
    character: {
      name,
      full_name: given?.full_name ?? KNOWN_CHARACTERS[name] ?? name,
      location: given?.location ?? INTERVIEW_LOCATION,
      status: given?.status ?? interviewStatus(name),
    },
    knownCharacters: { ...KNOWN_CHARACTERS },
    location: INTERVIEW_LOCATION,
    statusParts,
    userName: app.chatDefaults.userName || INTERVIEWER_ROLE,
    sampling: { temperature: INTERVIEW_SAMPLING.temperature, top_p: INTERVIEW_SAMPLING.topP, max_tokens: INTERVIEW_SAMPLING.maxTokens },
  };
}

/** The page's routes, public and left out of a 404's endpoint list (but for GET /). */
export function webRoutes(app: ServeApp): Route[] {
  return [
    { method: 'GET', path: '/', public: true, handle: async (ex) => sendPage(ex, app) },
    { method: 'GET', path: '/web/chat.css', public: true, hidden: true, handle: async (ex) => send(ex, 'text/css', await readFile(new URL('chat.css', WEB_DIR), 'utf8')) },
    { method: 'GET', path: '/web/chat.js', public: true, hidden: true, handle: async (ex) => send(ex, 'text/javascript', await clientScript()) },
  ];
}

async function sendPage(ex: Exchange, app: ServeApp): Promise<string> {
  const html = await readFile(new URL('chat.html', WEB_DIR), 'utf8');
  // `<` escaped: no text in the JSON can close the script element.
  const defaults = JSON.stringify(pageDefaults(app)).replaceAll('<', '\\u003c');
  return send(ex, 'text/html', html.replace('{{defaults}}', () => defaults));
}

function send(ex: Exchange, type: string, text: string): string {
  ex.res.writeHead(200, { 'Content-Type': `${type}; charset=utf-8`, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache' });
  ex.res.end(text);
  return '';
}

let bundle: Promise<string> | null = null;

/** web/chat.ts and what it imports as one browser script, built once per process. */
function clientScript(): Promise<string> {
  bundle ??= (async () => {
    const { build } = await import('esbuild');
    const result = await build({
      entryPoints: [fileURLToPath(new URL('chat.ts', WEB_DIR))],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      charset: 'utf8',
      logLevel: 'silent',
    });
    return result.outputFiles[0].text;
  })();
  // A failed build is not kept: the next request tries again (and answers the error again).
  bundle.catch(() => (bundle = null));
  return bundle;
}
