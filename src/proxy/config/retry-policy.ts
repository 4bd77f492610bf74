/**
 * A route's retry_policy -> RetryPolicyModel. In: a decoded envoy.config.route.v3.RetryPolicy.
 * Out: the retry conditions as a bit set (tested per attempt without string work), the number
 * of retries, per-try timeout, retriable status codes, back-off, and whether to avoid hosts
 * already tried; or a ResourceError for a condition or extension the proxy does not implement.
 */
import type { FieldReader } from './field-reader.js';
import { SUPPORT } from './support.js';

export const RetryOn = {
  '5xx': 1 << 0,
  'gateway-error': 1 << 1,
  reset: 1 << 2,
  'connect-failure': 1 << 3,
  'retriable-4xx': 1 << 4,
  'refused-stream': 1 << 5,
  'retriable-status-codes': 1 << 6,
  'reset-before-request': 1 << 7,
  // Conditions that can never arise in this proxy (no rate-limit filter, no HTTP/3); accepted.
  'envoy-ratelimited': 1 << 8,
  'http3-post-connect-failure': 1 << 9,
  // gRPC status in the response headers/trailers-only response.
  cancelled: 1 << 10,
  'deadline-exceeded': 1 << 11,
  internal: 1 << 12,
  'resource-exhausted': 1 << 13,
  unavailable: 1 << 14,
} as const;

export type RetryCondition = keyof typeof RetryOn;

export interface RetryPolicyModel {
  readonly on: number;
  readonly numRetries: number;
  /** 0: no per-try timeout (the route timeout covers all tries). */
  readonly perTryTimeoutMs: number;
  readonly statusCodes: ReadonlySet<number>;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** retry_host_predicate previous_hosts: avoid hosts already tried. */
  readonly avoidPreviousHosts: boolean;
  readonly hostSelectionMaxAttempts: number;
}

const PREVIOUS_HOSTS = 'envoy.retry_host_predicates.previous_hosts';

export function readRetryPolicy(r: FieldReader): RetryPolicyModel {
  let on = 0;
  const text = r.string('retry_on') ?? '';
  for (const raw of text.split(',')) {
    const c = raw.trim();
    if (c === '') continue;
    const bit = (RetryOn as Readonly<Record<string, number>>)[c];
    if (bit === undefined) throw r.error('retry_on', `retry condition '${c}' is not implemented`);
    on |= bit;
  }
  const numRetries = r.wrapped('num_retries') ?? 1;
  const perTryTimeoutMs = r.durationMs('per_try_timeout') ?? 0;
  r.declare(SUPPORT.RetryPolicy);
  let avoidPreviousHosts = false;
  for (const p of r.list('retry_host_predicate')) {
    const name = p.requiredString('name');
    if (name !== PREVIOUS_HOSTS) throw p.error('name', `retry host predicate '${name}' is not implemented (only ${PREVIOUS_HOSTS})`);
    p.declare(SUPPORT['RetryPolicy.retry_host_predicate']);
    avoidPreviousHosts = true;
  }
  const hostSelectionMaxAttempts = r.number('host_selection_retry_max_attempts') ?? 1;
  const statusCodes = new Set(r.raw('retriable_status_codes') as number[] | undefined);
  let backoffBaseMs = 25;
  let backoffMaxMs = 250;
  const bo = r.message('retry_back_off');
  if (bo) {
    const base = bo.durationMs('base_interval');
    if (!base) throw bo.error('base_interval', 'must be set and > 0');
    backoffBaseMs = base;
    backoffMaxMs = bo.durationMs('max_interval') ?? base * 10;
    if (backoffMaxMs < backoffBaseMs) throw bo.error('max_interval', 'must be >= base_interval');
  }
  return Object.freeze({ on, numRetries, perTryTimeoutMs, statusCodes, backoffBaseMs, backoffMaxMs, avoidPreviousHosts, hostSelectionMaxAttempts });
}
