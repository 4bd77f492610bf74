/**
 * Retry delays shared by the Consul loops and the proxy's ADS client. In: the number of
 * consecutive failures, and (Consul only) its Retry-After when it sent one (429 rate limiting).
 * Out: how long to wait before the next attempt: exponential from `baseMs`, capped at `maxMs`,
 * with "equal jitter" (half fixed, half random) so a fleet that lost its server together does not
 * come back in lockstep, while no retry ever fires immediately.
 */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** A Retry-After is honoured up to this long: a nonsense header must not park a watch for hours. */
export const MAX_RETRY_AFTER_MS = 300_000;

export function backoffDelay(failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(failures - 1, 30));
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * The delay after a failure: the backoff, or Consul's Retry-After when that is longer (capped at
 * MAX_RETRY_AFTER_MS), plus up to 10 % jitter so throttled control planes do not retry together.
 */
export function retryDelay(failures: number, policy: BackoffPolicy, retryAfterMs?: number, random: () => number = Math.random): number {
  const backoff = backoffDelay(failures, policy, random);
  if (retryAfterMs === undefined) return backoff;
  const asked = Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
  return asked >= backoff ? Math.round(asked + random() * asked * 0.1) : backoff;
}
