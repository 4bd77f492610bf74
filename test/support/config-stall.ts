/**
 * What a user sees while serve() refuses an expensive config, shared by the config-worker test
 * and `bench:config --serve`. In: an admin base URL. Out: a poller that asks `/health` every
 * `intervalMs` (one request at a time, as a load balancer does) and reports each answer's latency
 * and the longest gap between answers; and the costliest refusals bench:config knows of, all
 * under the size cap. The poller runs on the caller's event loop, which is serve()'s in a test:
 * a stalled loop shows as a gap.
 */
import { MINIMAL_CONFIG } from './config-text.js';

/** Short distinct names (base 36) keep 40,000 keys under the 512 KiB cap. */
export const keyId = (i: number): string => i.toString(36).padStart(4, '0');
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** MINIMAL_CONFIG with one key in cluster `web`, so keys appended at 2 spaces land in `cluster`. */
export const HEAD = MINIMAL_CONFIG.replace('web: {}', 'web:\n      lb-policy: random');

/** The costliest refusals under the cap (npm run bench:config). */
export const EXPENSIVE_REFUSALS: Readonly<Record<string, () => string>> = Object.freeze({
  'unknown keys: 40,000 in one section': () =>
    HEAD +
    range(40_000)
      .map((i) => `  k${keyId(i)}: 1\n`)
      .join(''),
  'duplicate keys: one key 40,000 times': () => HEAD + '  k: 1\n'.repeat(40_000),
  'routes: 20,000 share "/" without weights': () =>
    HEAD.replace(
      '    web:\n      prefix: ["/"]\n',
      range(20_000)
        .map((i) => `    c${keyId(i)}: {prefix: [/]}\n`)
        .join(''),
    ),
});

export interface HealthPolls {
  /** Latency of each answer, ms. */
  readonly latencies: readonly number[];
  /** The longest time between two answers (or between start and the first, or the last and stop), ms. */
  readonly maxGapMs: number;
  /** Requests that failed (no HTTP answer). */
  readonly failures: number;
}

export function pollHealth(adminUrl: string, intervalMs = 10): { stop(): Promise<HealthPolls> } {
  const latencies: number[] = [];
  let failures = 0;
  let maxGapMs = 0;
  let last = performance.now();
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        const res = await fetch(`${adminUrl}/health`);
        await res.arrayBuffer();
        const now = performance.now();
        latencies.push(now - t0);
        maxGapMs = Math.max(maxGapMs, now - last);
        last = now;
      } catch {
        failures++;
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      maxGapMs = Math.max(maxGapMs, performance.now() - last);
      return { latencies, maxGapMs, failures };
    },
  };
}
