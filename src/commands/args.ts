/**
 * Shared option parsing for subcommands: node:util parseArgs plus `--help` text, so every command
 * reports unknown or malformed flags the same way (naming the flag).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_CONFIG_MAX_BYTES } from '../config/parse.js';
import { ConsulXdsError } from '../errors.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<O extends OptionSpec>(command: string, argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConsulXdsError('CXDS_USAGE', `${command}: ${(err as Error).message}\n\n${usage}`);
  }
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
