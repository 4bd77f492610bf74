/**
 * Shared option parsing for subcommands: node:util parseArgs plus `--help` text, so every command
 * reports unknown or malformed flags the same way: naming the flag, with a did-you-mean for a
 * misspelt one. Every problem here is a CXDS_USAGE error, which cli.ts turns into exit code 2.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_CONFIG_MAX_BYTES } from '../config/parse.js';
import { ConsulXdsError } from '../errors.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<O extends OptionSpec>(command: string, argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    const help = `run 'consul-xds ${command} --help' for its options`;
    // Node's text for these names the flag but suggests `--` and "-- ...", which do not help here.
    const unknown = e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-[^']*)'/.exec(e.message)?.[1] : undefined;
    if (unknown !== undefined) {
      const flag = unknown.replace(/=.*$/, '');
      const near = closest(flag.replace(/^-+/, ''), Object.keys(options));
      throw new ConsulXdsError('CXDS_USAGE', `${command}: unknown flag ${flag}${near ? `; did you mean --${near}?` : ''} (${help})`);
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new ConsulXdsError('CXDS_USAGE', `${command}: ${e.message.replace(/\.$/, '')} (${help})`);
    throw new ConsulXdsError('CXDS_USAGE', `${command}: ${e.message}\n\n${usage}`);
  }
}

/** The candidate nearest to `word` by edit distance, when near enough to be a typo (or a prefix of it). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const name of candidates) {
    const d = name.startsWith(word) && word.length >= 3 ? 0.5 : editDistance(word, name);
    if (!best || d < best.d) best = { name, d };
  }
  return best && best.d <= Math.max(2, Math.floor(word.length / 3)) ? best.name : undefined;
}

/** Levenshtein distance (insert, delete, substitute; one row at a time). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** pino's levels, which `--log-level` takes. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** `--log-level`, checked: undefined keeps the default ($CONSUL_XDS_LOG_LEVEL, else info). */
export function logLevelOption(value: string | undefined): string | undefined {
  return value === undefined ? undefined : choiceOption('log-level', value, LOG_LEVELS, 'info');
}

/** `--config-max-bytes N`, the size cap on a config text, for every command that parses one. */
export const CONFIG_MAX_BYTES_FLAG = { 'config-max-bytes': { type: 'string' } } as const;
export const CONFIG_MAX_BYTES_USAGE = `  --config-max-bytes N      refuse a config text over N bytes unread (default ${DEFAULT_CONFIG_MAX_BYTES}: 512 KiB, Consul's KV value limit)\n`;

/** The `--config-max-bytes` value as ParseOptions (empty: the default cap). */
export function configMaxBytesOption(value: string | undefined): { maxBytes?: number } {
  if (value === undefined) return {};
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new ConsulXdsError('CXDS_USAGE', `--config-max-bytes: expected a number of bytes (integer >= 1), got '${value}'`);
  return { maxBytes: n };
}

/** A TCP port flag: integer 0..65535, named in the error when it is not. */
export function portOption(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConsulXdsError('CXDS_USAGE', `--${flag}: expected a port number 0-65535, got '${value}'`);
  return n;
}

/** A flag that takes one of a fixed set of values, named in the error when it does not. */
export function choiceOption<T extends string>(flag: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new ConsulXdsError('CXDS_USAGE', `--${flag}: expected one of ${choices.join(', ')}, got '${value}'`);
}

/** A count or duration flag: an integer >= 0, named in the error when it is not. */
export function nonNegativeIntOption(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new ConsulXdsError('CXDS_USAGE', `--${flag}: expected an integer >= 0, got '${value}'`);
  return n;
}
