/**
 * The body of the config parser thread (see parse-worker.ts). In: `{ id, text, source, maxBytes }`
 * messages, one at a time. Out: `{ ready }` once loaded, then `{ id, config }` or `{ id, error }`, the error flattened to what
 * the main side needs to rebuild the same class (ConfigError, ConfigTooLargeError, or a coded
 * error) with the same message. The config crosses as a structured clone and is frozen again there.
 */
import { parentPort } from 'node:worker_threads';
import { ConfigError, ConfigTooLargeError, ConsulXdsError } from '../errors.js';
import { parseConfig } from './parse.js';
import type { ParseReply, ParseRequest, WireError } from './parse-worker.js';

function flatten(err: unknown): WireError {
  if (err instanceof ConfigError) return { kind: 'config', source: err.source, issues: err.issues, total: err.total };
  if (err instanceof ConfigTooLargeError) return { kind: 'too-large', source: err.source, bytes: err.bytes, maxBytes: err.maxBytes };
  const e = err as Error;
  return { kind: 'other', code: err instanceof ConsulXdsError ? err.code : 'CXDS_INTERNAL', message: e.message };
}

const port = parentPort;
if (!port) throw new Error('parse-thread.js runs as a worker thread (see parse-worker.ts)');
port.on('message', ({ id, text, source, maxBytes }: ParseRequest) => {
  let reply: ParseReply;
  try {
    reply = { id, config: parseConfig(text, source, { maxBytes }) };
  } catch (err) {
    reply = { id, error: flatten(err) };
  }
  port.postMessage(reply);
});
// The modules are loaded: the main side starts the time budget of the first text from here.
port.postMessage({ ready: true } satisfies ParseReply);
