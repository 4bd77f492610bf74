/**
 * The ramp's gate: one decision from the canary's and the baseline's fleet figures over the
 * step's window. In: the spec's limits, both clusters' figures, how long the step has run, the
 * share of sidecars that answered. Out: pass (take the next step), wait (not yet: too few
 * requests, window not over, too few sidecars, or a fleet-wide problem) or breach (roll back).
 *
 * Judged against the peer: a canary over a limit is a breach only while the baseline is within it
 * over the same window; when both are over, the problem is fleet-wide and the ramp waits instead.
 * Too few requests never pass. They can breach on 5xx: the errors are counted over at least
 * min-requests, so 3 errors in 50 requests with min 200 is 1.5 %, conclusive at a 1 % limit
 * whatever the next 150 requests do.
 */
import type { Figures, RampSpec } from './spec.js';

export type Decision =
  | { readonly kind: 'pass'; readonly reason: string }
  | { readonly kind: 'wait'; readonly reason: string }
  | { readonly kind: 'breach'; readonly reason: string };

export interface GateInput {
  readonly spec: Pick<RampSpec, 'max5xxRatio' | 'maxP99Ms' | 'minRequests' | 'everyMs' | 'minSidecarShare' | 'canary' | 'baseline'>;
  readonly canary: Figures;
  readonly baseline: Figures;
  readonly elapsedMs: number;
  /** Sidecars that answered / registered (0/0 counts as 0). */
  readonly answered: number;
  readonly registered: number;
}

const pct = (r: number): string => `${(r * 100).toFixed(2)}%`;

export function decide(input: GateInput): Decision {
  const { spec, canary, baseline } = input;
  const baselineCounted = baseline.requests >= spec.minRequests;
  const canary5xx = canary.errors5xx / Math.max(canary.requests, spec.minRequests);
  if (canary5xx > spec.max5xxRatio) {
    if (baselineCounted && baseline.ratio5xx > spec.max5xxRatio)
      return {
        kind: 'wait',
        reason: `5xx over the limit on both ${spec.canary} (${pct(canary5xx)}) and ${spec.baseline} (${pct(baseline.ratio5xx)}): fleet-wide, not the canary's`,
      };
    return {
      kind: 'breach',
      reason: `${spec.canary} 5xx ${pct(canary5xx)} > ${pct(spec.max5xxRatio)} (${canary.errors5xx} of ${canary.requests} requests${canary.requests < spec.minRequests ? `, counted over at least ${spec.minRequests}` : ''}; ${spec.baseline} ${pct(baseline.ratio5xx)})`,
    };
  }
  if (canary.requests >= spec.minRequests && canary.p99Ms !== undefined && canary.p99Ms > spec.maxP99Ms) {
    if (baselineCounted && baseline.p99Ms !== undefined && baseline.p99Ms > spec.maxP99Ms)
      return {
        kind: 'wait',
        reason: `p99 over the limit on both ${spec.canary} (${canary.p99Ms} ms) and ${spec.baseline} (${baseline.p99Ms} ms): fleet-wide, not the canary's`,
      };
    return { kind: 'breach', reason: `${spec.canary} p99 ${canary.p99Ms} ms > ${spec.maxP99Ms} ms (${spec.baseline} ${baseline.p99Ms ?? '-'} ms)` };
  }
  if (input.elapsedMs < spec.everyMs) return { kind: 'wait', reason: 'window not over' };
  if (canary.requests < spec.minRequests) return { kind: 'wait', reason: `too few requests on ${spec.canary}: ${canary.requests} < ${spec.minRequests}` };
  const share = input.registered === 0 ? 0 : input.answered / input.registered;
  if (share < spec.minSidecarShare)
    return { kind: 'wait', reason: `only ${input.answered} of ${input.registered} sidecars answered (need ${pct(spec.minSidecarShare)})` };
  return { kind: 'pass', reason: `${spec.canary} 5xx ${pct(canary.ratio5xx)}, p99 ${canary.p99Ms ?? '-'} ms over ${canary.requests} requests` };
}
