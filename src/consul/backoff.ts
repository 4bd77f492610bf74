/**
 * Retry delays for Consul loops. In: the number of consecutive failures. Out: how long to wait
 * before the next attempt: exponential from `baseMs`, capped at `maxMs`, with "equal jitter" (half
 * fixed, half random) so a fleet of control planes that lost Consul together does not come back
 * in lockstep, while no retry ever fires immediately.
 */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

export function backoffDelay(failures: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(failures - 1, 30));
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
