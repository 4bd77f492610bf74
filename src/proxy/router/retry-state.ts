/**
 * Retry decisions of the router filter (Envoy's retry_state_impl). In: a route's
 * RetryPolicyModel and the outcome of one attempt (response status and headers, or a local
 * failure). Out: whether that outcome is retriable by the policy, and the back-off before the
 * next attempt. Attempt counting, retry budgets and timers stay with the filter (router.ts).
 */
import { RetryOn, type RetryPolicyModel } from '../config/retry-policy.js';
import type { HeaderMap, UpstreamFailure } from '../upstream/conn-pool.js';

/** Request bodies kept for retries; larger bodies are streamed and lose their retries (Envoy: buffer limit). */
export const RETRY_BUFFER_LIMIT = 1 << 20;

const GATEWAY_ERRORS = RetryOn['5xx'] | RetryOn['gateway-error'];
const RESETS = GATEWAY_ERRORS | RetryOn.reset;

const GRPC_RETRY: Readonly<Record<string, number>> = {
  '1': RetryOn.cancelled,
  '4': RetryOn['deadline-exceeded'],
  '8': RetryOn['resource-exhausted'],
  '13': RetryOn.internal,
  '14': RetryOn.unavailable,
};

/** Whether a response (status, and grpc-status in its headers) asks for a retry under `r`. */
export function retriableResponse(r: RetryPolicyModel, status: number, headers: HeaderMap): boolean {
  const on = r.on;
  if (status >= 500 && on & RetryOn['5xx']) return true;
  if ((status === 502 || status === 503 || status === 504) && on & RetryOn['gateway-error']) return true;
  if (status === 409 && on & RetryOn['retriable-4xx']) return true;
  if (on & RetryOn['retriable-status-codes'] && r.statusCodes.has(status)) return true;
  const grpc = headers['grpc-status'];
  if (typeof grpc === 'string' && on & (GRPC_RETRY[grpc] ?? 0)) return true;
  return false;
}

/** Whether a local failure of an attempt is retriable under `r` (no policy: never). */
export function retriableFailure(r: RetryPolicyModel | undefined, failure: UpstreamFailure | 'per_try_timeout'): boolean {
  const on = r?.on ?? 0;
  switch (failure) {
    case 'connect_failure':
    case 'connect_timeout':
      return (on & (RESETS | RetryOn['connect-failure'] | RetryOn['reset-before-request'])) !== 0;
    case 'refused_stream':
      return (on & (RESETS | RetryOn['refused-stream'] | RetryOn['reset-before-request'])) !== 0;
    case 'reset_before_response':
    case 'per_try_timeout':
      return (on & RESETS) !== 0;
    default:
      return false;
  }
}

/** Envoy's fully jittered exponential back-off before the next attempt, after `attempts` so far. */
export function retryBackoffMs(r: RetryPolicyModel, attempts: number): number {
  const ceiling = Math.min(r.backoffMaxMs, r.backoffBaseMs * (2 ** attempts - 1));
  return Math.random() * ceiling;
}
