/**
 * Shared option parsing for subcommands: node:util parseArgs plus `--help` text, so every command
 * reports unknown or malformed flags the same way (naming the flag).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConsulXdsError } from '../errors.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<O extends OptionSpec>(command: string, argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConsulXdsError('CXDS_USAGE', `${command}: ${(err as Error).message}\n\n${usage}`);
  }
}

/** A TCP port flag: integer 0..65535, named in the error when it is not. */
export function portOption(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConsulXdsError('CXDS_USAGE', `--${flag}: expected a port number 0-65535, got '${value}'`);
  return n;
}
