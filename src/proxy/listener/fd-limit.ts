/**
 * The default of the proxy-wide downstream connection cap (--max-downstream-connections). In:
 * the process's open-file limit, read from /proc/self/limits (Linux; node has no getrlimit).
 * Out: 20,000 connections, or fewer where the fd limit would run out first.
 *
 * Why half the limit: a proxied connection holds two descriptors, the downstream socket and its
 * upstream one; a reserve stays for the xDS stream, health checks, access-log files and the admin
 * server. Past the fd limit every accept and every upstream connect fails (EMFILE); the cap turns
 * that into new connections closed and counted while the open ones keep working.
 */
import { readFileSync } from 'node:fs';

export const DOWNSTREAM_CAP_CEILING = 20_000;
const FD_RESERVE = 256;

/** The soft RLIMIT_NOFILE, or undefined when unknown or unlimited. */
export function openFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
}

export function defaultMaxDownstreamConnections(fdLimit: number | undefined): number {
  if (fdLimit === undefined) return DOWNSTREAM_CAP_CEILING;
  return Math.max(1, Math.min(DOWNSTREAM_CAP_CEILING, Math.floor((fdLimit - FD_RESERVE) / 2)));
}
