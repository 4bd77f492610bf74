/**
 * A pino logger whose JSON lines stay in memory, so a test can wait for what the app reported
 * (e.g. the refusal of an invalid config, by its stable `code`) instead of sleeping.
 * In: nothing. Out: the logger, the parsed records, and a poll over them.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { waitUntil } from './tmp.js';

export interface LogRecord {
  readonly level: number;
  readonly msg?: string;
  readonly code?: string;
  readonly [key: string]: unknown;
}

export interface CapturedLog {
  readonly logger: Logger;
  readonly records: readonly LogRecord[];
  /** Records at `level` or above (pino: 40 warn, 50 error). */
  atLeast(level: number): LogRecord[];
  /** Waits for a record matching `match` that arrived after `since` records; returns it. */
  waitFor(match: (r: LogRecord) => boolean, opts: { what: string; since?: number; timeoutMs?: number }): Promise<LogRecord>;
  /** The last records as text, for failure messages. */
  tail(n?: number): string;
}

export function captureLog(level = 'info'): CapturedLog {
  const records: LogRecord[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        try {
          records.push(JSON.parse(line) as LogRecord);
        } catch {
          records.push({ level: 60, msg: `unparsable log line: ${line}` });
        }
      }
      done();
    },
  });
  const logger = pino({ level }, sink);
  const tail = (n = 20): string =>
    records
      .slice(-n)
      .map((r) => JSON.stringify(r))
      .join('\n');
  return {
    logger,
    records,
    atLeast: (min) => records.filter((r) => r.level >= min),
    tail,
    waitFor: (match, opts) =>
      waitUntil(() => records.slice(opts.since ?? 0).find(match), {
        what: opts.what,
        timeoutMs: opts.timeoutMs ?? 10_000,
        context: () => `--- app log tail ---\n${tail()}`,
      }),
  };
}
