/**
 * The process logger (pino, JSON lines). Child loggers carry bindings serialised once. ACL tokens
 * are redacted wherever they might appear, so a secret never reaches a log line.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; destination?: number | string } = {}): Logger {
  return pino(
    {
      name: 'consul-xds',
      level: opts.level ?? process.env.CONSUL_XDS_LOG_LEVEL ?? 'info',
      redact: { paths: ['token', '*.token', 'headers["x-consul-token"]', 'consulToken', '*.consulToken'], censor: '[redacted]' },
    },
    pino.destination({ dest: opts.destination ?? 1, sync: false }),
  );
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
