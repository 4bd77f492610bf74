/**
 * Small test plumbing shared by the integration harness. In: nothing but the OS. Out: scratch
 * directories that are removed again, free loopback ports for configs that must name a port up
 * front, and a deadline-based poll (the only way tests wait: never a bare sleep).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh directory under the OS temp dir; `remove()` deletes it unless KEEP_TEST_TMP is set. */
export async function makeTempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `consul-xds-${prefix}-`));
  return {
    path,
    async remove() {
      if (process.env.KEEP_TEST_TMP) return;
      await rm(path, { recursive: true, force: true });
    },
  };
}

export { freePort } from './ports.js';

export interface WaitOptions {
  /** What is awaited, for the failure message ("Envoy to see cluster web-api-go"). */
  readonly what: string;
  /** Deadline; generous by default because a loaded 2-core CI box is slow, not broken. */
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** Extra context appended to the failure message (a log tail, the last observed value). */
  readonly context?: () => string | Promise<string>;
}

/** Thrown by a probe to end the wait at once (the awaited thing can no longer happen). */
export class GiveUp extends Error {}

/**
 * Polls `probe` until it returns something other than undefined/false, and returns that value.
 * A probe that throws counts as "not yet" (the last error is reported if the deadline passes),
 * except for GiveUp, which ends the wait at once.
 */
export async function waitUntil<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, opts: WaitOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
  const extra = opts.context ? `\n${await opts.context()}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what}${why}${extra}`);
}
