/**
 * Consul settings. In: options from flags (or code) plus the standard Consul environment variables
 * (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY,
 * CONSUL_HTTP_SSL, CONSUL_HTTP_SSL_VERIFY, CONSUL_TLS_SERVER_NAME). Out: one frozen, validated
 * `ConsulConnection` the client uses, and the key bindings the KV source watches.
 *
 * Explicit options win over the environment, so a flag always means what it says.
 */
import { z } from 'zod';
import { ConsulXdsError } from '../errors.js';

export interface ConsulTlsOptions {
  /** PEM file of the CA that signed Consul's certificate (CONSUL_CACERT). */
  readonly caFile?: string;
  /** Client certificate and key for Consul's verify_incoming (CONSUL_CLIENT_CERT / CONSUL_CLIENT_KEY). */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** Skip server certificate verification (CONSUL_HTTP_SSL_VERIFY=false). For tests only. */
  readonly insecure?: boolean;
  /** SNI / expected certificate name (CONSUL_TLS_SERVER_NAME). */
  readonly serverName?: string;
}

/** Timing of every blocking-query loop (KV and health). Defaults suit production; tests shorten them. */
export interface ConsulWatchTiming {
  /** `wait` sent with each blocking query (Consul caps it at 10 min). Default 60 s. */
  readonly waitMs?: number;
  /** Minimum time between two request starts of one loop, on success too, so a loop never spins. Default 100 ms. */
  readonly minIntervalMs?: number;
  /** First retry delay after an error; doubles per consecutive failure, with jitter. Default 250 ms. */
  readonly backoffBaseMs?: number;
  /** Cap of the retry delay. Default 10 s. */
  readonly backoffMaxMs?: number;
}

/** How Consul health entries become endpoints (see src/consul/health-entries.ts). */
export interface ConsulHealthMapping {
  /** What a `warning` check means to Envoy. Default DEGRADED (Envoy uses it only when too few are healthy). */
  readonly warningAs?: 'DEGRADED' | 'HEALTHY';
  /** Meta key holding the region (Service.Meta first, then Node.Meta). Default `region`. */
  readonly regionKey?: string;
  /** Meta key holding the zone (Service.Meta first, then Node.Meta). Default `zone`. */
  readonly zoneKey?: string;
}

/** One node group's config key: snapshots built from `key` are served to Envoys whose node.cluster is `group`. */
export interface KvBinding {
  readonly group: string;
  readonly key: string;
}

/**
 * Everything `serve` needs to run in Consul mode. `app.ts` accepts this object as `consul`.
 * Connection fields fall back to the environment; see `resolveConnection`.
 */
export interface ConsulOptions {
  /** `http://host:port`, `https://host:port` or `host:port`. Default $CONSUL_HTTP_ADDR, else http://127.0.0.1:8500. */
  readonly address?: string;
  /** ACL token, sent as X-Consul-Token and never logged. Default $CONSUL_HTTP_TOKEN. */
  readonly token?: string;
  /** `dc` query parameter for every read and write. Default: the agent's own datacenter. */
  readonly datacenter?: string;
  readonly tls?: ConsulTlsOptions;
  /** Single fleet: the KV key holding the YAML config (group `default`). Default `consul-xds/config`. */
  readonly key?: string;
  /**
   * Multiple fleets: a key per node group, `<keyPrefix><group>` for every group in `groups`
   * (e.g. prefix `consul-xds/`, groups [`edge`, `internal`] -> `consul-xds/edge`, `consul-xds/internal`).
   */
  readonly keyPrefix?: string;
  readonly groups?: readonly string[];
  readonly health?: ConsulHealthMapping;
  readonly watch?: ConsulWatchTiming;
  /** How long `serve` waits for the first KV read and every watched service's first answer. Default 10 s. */
  readonly startupTimeoutMs?: number;
  /**
   * How long a service's last instances keep serving when Consul suddenly answers none (or its
   * index goes backwards and instances are missing), before the loss is believed. Default 30 s;
   * 0 = off. See src/consul/instance-hold.ts.
   */
  readonly emptyGraceMs?: number;
  /** Read consistency of the KV and health watches. Default `stale`; see ConsulConsistency. */
  readonly consistency?: ConsulConsistency;
}

/**
 * Consul's read modes (api-docs/features/consistency). `stale`: any server answers, so reads go on
 * through a leader election or a lost quorum (typically milliseconds behind the leader); `default`:
 * the leader answers (an election means errors until a new one is elected); `consistent`: the
 * leader answers after checking it still leads (one more round trip per read).
 */
export type ConsulConsistency = 'stale' | 'default' | 'consistent';

export const DEFAULT_CONSUL_ADDRESS = 'http://127.0.0.1:8500';
export const DEFAULT_CONSUL_KEY = 'consul-xds/config';
export const DEFAULT_GROUP = 'default';
export const DEFAULT_STARTUP_TIMEOUT_MS = 10_000;
export const DEFAULT_EMPTY_GRACE_MS = 30_000;
/**
 * Stale by default: watches are long-lived and only ever act on what changed, a follower is
 * normally milliseconds behind, and a read that fails during an election would cost more than
 * one that is a moment late (the last endpoints stay either way, but new changes would wait for
 * the election). What a stale read may get wrong, an index from a lagging server below the last
 * one, is caught by the index-backwards hold.
 */
export const DEFAULT_CONSISTENCY: ConsulConsistency = 'stale';
export const CONSISTENCY_MODES: readonly ConsulConsistency[] = Object.freeze(['stale', 'default', 'consistent']);

/** The query parameters of a read mode (Consul looks only at their presence). */
export function consistencyQuery(mode: ConsulConsistency = DEFAULT_CONSISTENCY): Readonly<Record<string, string>> {
  if (!CONSISTENCY_MODES.includes(mode)) usage(`consul consistency '${String(mode)}': expected one of ${CONSISTENCY_MODES.join(', ')}`);
  return mode === 'default' ? {} : { [mode]: '' };
}

/** The hold's grace period: an integer 0..1 h of milliseconds (0 = off). */
export function resolveEmptyGraceMs(ms: number = DEFAULT_EMPTY_GRACE_MS): number {
  if (!Number.isInteger(ms) || ms < 0 || ms > 3_600_000)
    usage(`consul empty grace (--consul-empty-grace-ms, emptyGraceMs) '${ms}': expected milliseconds 0-3600000 (0 = off)`);
  return ms;
}

export const DEFAULT_TIMING: Required<ConsulWatchTiming> = Object.freeze({
  waitMs: 60_000,
  minIntervalMs: 100,
  backoffBaseMs: 250,
  backoffMaxMs: 10_000,
});

/** The resolved connection: what the HTTP client needs, nothing else. */
export interface ConsulConnection {
  readonly baseUrl: URL;
  readonly token?: string;
  readonly datacenter?: string;
  readonly tls: ConsulTlsOptions;
}

const nonEmpty = z.string().trim().min(1);
const timingSchema = z.object({
  waitMs: z.number().int().min(1000).max(600_000).optional(),
  minIntervalMs: z.number().int().min(0).max(60_000).optional(),
  backoffBaseMs: z.number().int().min(1).max(600_000).optional(),
  backoffMaxMs: z.number().int().min(1).max(3_600_000).optional(),
});

function usage(message: string): never {
  throw new ConsulXdsError('CXDS_USAGE', message);
}

function envFlag(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  return /^(1|t|true|yes|on)$/i.test(value);
}

/** Parses an address the way the consul CLI does: a bare `host:port` means http unless CONSUL_HTTP_SSL is set. */
export function parseAddress(address: string, ssl?: boolean): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `${ssl ? 'https' : 'http'}://${address}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    usage(`consul address '${address}': not a URL or host:port`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') usage(`consul address '${address}': scheme must be http or https`);
  url.pathname = url.pathname.replace(/\/+$/, '');
  url.search = '';
  url.hash = '';
  return url;
}

export function resolveConnection(opts: ConsulOptions = {}, env: NodeJS.ProcessEnv = process.env): ConsulConnection {
  const ssl = envFlag(env.CONSUL_HTTP_SSL);
  const baseUrl = parseAddress(opts.address ?? env.CONSUL_HTTP_ADDR ?? DEFAULT_CONSUL_ADDRESS, ssl);
  const token = opts.token ?? (env.CONSUL_HTTP_TOKEN || undefined);
  const verify = envFlag(env.CONSUL_HTTP_SSL_VERIFY);
  const tls: ConsulTlsOptions = Object.freeze({
    caFile: opts.tls?.caFile ?? (env.CONSUL_CACERT || undefined),
    certFile: opts.tls?.certFile ?? (env.CONSUL_CLIENT_CERT || undefined),
    keyFile: opts.tls?.keyFile ?? (env.CONSUL_CLIENT_KEY || undefined),
    insecure: opts.tls?.insecure ?? (verify === undefined ? undefined : !verify),
    serverName: opts.tls?.serverName ?? (env.CONSUL_TLS_SERVER_NAME || undefined),
  });
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined))
    usage('consul TLS: a client certificate needs its key and vice versa (--consul-client-cert with --consul-client-key)');
  if (opts.datacenter !== undefined && !nonEmpty.safeParse(opts.datacenter).success) usage('--datacenter: must not be empty');
  return Object.freeze({ baseUrl, token, datacenter: opts.datacenter, tls });
}

/** The (group, key) pairs to watch: `keyPrefix` + `groups`, or the single `key` for group `default`. */
export function kvBindings(opts: ConsulOptions = {}): readonly KvBinding[] {
  if (opts.keyPrefix !== undefined || opts.groups !== undefined) {
    if (opts.key !== undefined) usage('--consul-key and --consul-key-prefix/--consul-group are exclusive: use one key, or a key per group');
    const prefix = opts.keyPrefix ?? '';
    const groups = opts.groups ?? [];
    if (groups.length === 0) usage('--consul-key-prefix needs at least one --consul-group (the Envoy node.cluster values to serve)');
    const seen = new Set<string>();
    return Object.freeze(
      groups.map((group) => {
        if (!nonEmpty.safeParse(group).success || group.includes('/')) usage(`--consul-group '${group}': must be a non-empty name without '/'`);
        if (seen.has(group)) usage(`--consul-group '${group}': listed twice`);
        seen.add(group);
        return Object.freeze({ group, key: checkKey(`${prefix}${group}`) });
      }),
    );
  }
  return Object.freeze([Object.freeze({ group: DEFAULT_GROUP, key: checkKey(opts.key ?? DEFAULT_CONSUL_KEY) })]);
}

/** The one key an operator command works on: `--consul-key`, or `--consul-key-prefix` with a single `--group`. */
export function singleKvKey(opts: ConsulOptions, command: string): string {
  const bindings = kvBindings(opts);
  const [only] = bindings;
  if (!only || bindings.length > 1) usage(`${command}: works on one key; give one --group (got ${bindings.map((b) => b.group).join(', ')})`);
  return only.key;
}

/** A KV key as Consul accepts it: non-empty, no leading slash (it would be part of the URL path). */
export function checkKey(key: string): string {
  const k = key.replace(/^\/+/, '');
  if (k === '' || k.endsWith('/')) usage(`consul key '${key}': must name a key, not a folder`);
  return k;
}

export function resolveTiming(timing: ConsulWatchTiming = {}): Required<ConsulWatchTiming> {
  const parsed = timingSchema.safeParse(timing);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    usage(`consul watch timing ${first?.path.join('.') ?? ''}: ${first?.message ?? 'invalid'}`);
  }
  const t = { ...DEFAULT_TIMING, ...stripUndefined(parsed.data) };
  if (t.backoffMaxMs < t.backoffBaseMs) usage('consul watch timing: backoffMaxMs must be >= backoffBaseMs');
  return Object.freeze(t);
}

export const DEFAULT_HEALTH_MAPPING: Required<ConsulHealthMapping> = Object.freeze({
  warningAs: 'DEGRADED',
  regionKey: 'region',
  zoneKey: 'zone',
});

export function resolveHealthMapping(mapping: ConsulHealthMapping = {}): Required<ConsulHealthMapping> {
  const m = { ...DEFAULT_HEALTH_MAPPING, ...stripUndefined(mapping) };
  if (m.warningAs !== 'DEGRADED' && m.warningAs !== 'HEALTHY') usage(`consul health warningAs '${String(m.warningAs)}': expected DEGRADED or HEALTHY`);
  if (!nonEmpty.safeParse(m.regionKey).success || !nonEmpty.safeParse(m.zoneKey).success) usage('consul health region/zone meta keys must not be empty');
  return Object.freeze(m);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
