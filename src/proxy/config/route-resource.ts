/**
 * RouteConfiguration (RDS, or inline in an HCM) -> RouteConfigModel. In: a decoded
 * envoy.config.route.v3.RouteConfiguration. Out: frozen virtual hosts with compiled matchers
 * (prefix / path / safe_regex / headers / query parameters / gRPC / runtime fraction) and actions
 * (cluster, cluster_header, weighted_clusters, host and path rewrites, timeout, retry policy,
 * mirror policies, hash policies, redirect, direct_response), the header mutations of routes and
 * weighted clusters, or a ResourceError naming the field the proxy cannot honour (header
 * mutations of virtual hosts and route configurations, CORS, rate limits, per-filter config, ...).
 */
import type { FieldReader } from './field-reader.js';
import { readRegexMatcher, readRegexRewrite, readStringMatcher, type Regex, type StringPredicate } from './string-matcher.js';
import { readRetryPolicy, type RetryPolicyModel } from './retry-policy.js';
import { SUPPORT } from './support.js';

/** Reads one header of the request being routed ('' when absent is decided by the matcher). */
export interface HeaderSource {
  header(name: string): string | undefined;
}

export interface HeaderMatcherModel {
  readonly name: string;
  readonly test: (value: string | undefined) => boolean;
}

export interface QueryMatcherModel {
  readonly name: string;
  /** undefined: presence only. */
  readonly test: StringPredicate | undefined;
}

export interface FractionModel {
  readonly numerator: number;
  readonly denominator: number;
}

export interface RouteMatchModel {
  readonly kind: 'prefix' | 'path' | 'regex' | 'separated';
  /** Lower-cased when !caseSensitive. */
  readonly value: string;
  readonly regex: Regex | undefined;
  readonly caseSensitive: boolean;
  readonly headers: readonly HeaderMatcherModel[];
  readonly query: readonly QueryMatcherModel[];
  readonly grpcOnly: boolean;
  readonly fraction: FractionModel | undefined;
}

export const HEADER_APPEND_ACTIONS = ['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS'] as const;

/** One HeaderValueOption: a lower-cased name, a literal value, and how it meets an existing header. */
export interface HeaderAddModel {
  readonly name: string;
  readonly value: string;
  readonly action: (typeof HEADER_APPEND_ACTIONS)[number];
}

/** The header mutations of a Route or a weighted cluster (router/header-parser.ts applies them). */
export interface HeaderMutationModel {
  readonly requestAdd: readonly HeaderAddModel[];
  readonly requestRemove: readonly string[];
  readonly responseAdd: readonly HeaderAddModel[];
  readonly responseRemove: readonly string[];
}

export interface WeightedTarget {
  readonly name: string;
  readonly weight: number;
  readonly hostRewrite: string | undefined;
  readonly headerMutations: HeaderMutationModel | undefined;
}

export interface MirrorModel {
  readonly cluster: string;
  readonly fraction: FractionModel;
  readonly disableSuffix: boolean;
}

export type HashPolicyModel =
  | { readonly kind: 'header'; readonly name: string; readonly terminal: boolean }
  | { readonly kind: 'source_ip'; readonly terminal: boolean }
  | { readonly kind: 'query'; readonly name: string; readonly terminal: boolean }
  | { readonly kind: 'cookie'; readonly name: string; readonly terminal: boolean };

export interface ForwardActionModel {
  readonly kind: 'forward';
  readonly cluster: string | undefined;
  readonly clusterHeader: string | undefined;
  readonly weighted: readonly WeightedTarget[] | undefined;
  readonly totalWeight: number;
  readonly notFoundStatus: number;
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: ((path: string) => string) | undefined;
  readonly hostRewrite: string | undefined;
  readonly hostRewriteHeader: string | undefined;
  /** 0 disables the timeout (Envoy's default is 15 s). */
  readonly timeoutMs: number;
  readonly retry: RetryPolicyModel | undefined;
  readonly mirrors: readonly MirrorModel[];
  readonly hashPolicies: readonly HashPolicyModel[];
  readonly highPriority: boolean;
}

export interface DirectActionModel {
  readonly kind: 'direct';
  readonly status: number;
  readonly body: Buffer | undefined;
}

export interface RedirectActionModel {
  readonly kind: 'redirect';
  readonly status: number;
  readonly scheme: string | undefined;
  readonly host: string | undefined;
  readonly port: number | undefined;
  readonly path: string | undefined;
  readonly prefixRewrite: string | undefined;
  readonly stripQuery: boolean;
}

export type RouteActionModel = ForwardActionModel | DirectActionModel | RedirectActionModel;

export interface RouteModel {
  readonly name: string;
  readonly match: RouteMatchModel;
  readonly action: RouteActionModel;
  readonly headerMutations: HeaderMutationModel | undefined;
}

export interface VirtualHostModel {
  readonly name: string;
  readonly domains: readonly string[];
  readonly routes: readonly RouteModel[];
}

export interface RouteConfigModel {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHostModel[];
  readonly ignorePortInHostMatching: boolean;
  /** Header mutations run route first, weighted cluster last (the default is the other way round). */
  readonly mostSpecificHeaderMutationsWins: boolean;
}

const DENOMINATORS: Readonly<Record<string, number>> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** type.v3.FractionalPercent. */
export function readFraction(r: FieldReader): FractionModel {
  const numerator = r.number('numerator') ?? 0;
  const denominator = DENOMINATORS[r.enumOf('denominator', ['HUNDRED', 'TEN_THOUSAND', 'MILLION'] as const, 'HUNDRED')] ?? 100;
  return Object.freeze({ numerator: Math.min(numerator, denominator), denominator });
}

/** core.v3.RuntimeFractionalPercent: the default value (the proxy has no runtime layer). */
function readRuntimeFraction(r: FieldReader): FractionModel {
  r.declare(SUPPORT.RuntimeFractionalPercent);
  const d = r.message('default_value');
  if (!d) throw r.error('default_value', 'must be set');
  return readFraction(d);
}

export function readRouteConfiguration(r: FieldReader): RouteConfigModel {
  const name = r.string('name') ?? '';
  r.declare(SUPPORT.RouteConfiguration);
  const ignorePortInHostMatching = r.bool('ignore_port_in_host_matching');
  const mostSpecificHeaderMutationsWins = r.bool('most_specific_header_mutations_wins');
  const virtualHosts = r.list('virtual_hosts').map(readVirtualHost);
  const seen = new Set<string>();
  for (const vh of virtualHosts) {
    for (const d of vh.domains) {
      const key = d.toLowerCase();
      if (seen.has(key)) throw r.error('virtual_hosts', `domain '${d}' appears in more than one virtual host`);
      seen.add(key);
    }
  }
  return Object.freeze({ name, virtualHosts: Object.freeze(virtualHosts), ignorePortInHostMatching, mostSpecificHeaderMutationsWins });
}

function readVirtualHost(r: FieldReader): VirtualHostModel {
  const name = r.requiredString('name');
  const domains = r.stringList('domains');
  if (domains.length === 0) throw r.error('domains', 'must list at least one domain');
  for (const d of domains) {
    if (d === '') throw r.error('domains', 'empty domain');
    if (d !== '*' && d.slice(1, -1).includes('*')) throw r.error('domains', `'${d}': a wildcard may only stand at the start or end`);
  }
  r.declare(SUPPORT.VirtualHost);
  r.enumOf('require_tls', ['NONE'] as const, 'NONE');
  // A virtual-host retry policy / mirror policies apply to routes that set none themselves.
  const vhRetry = r.message('retry_policy');
  const defaults = {
    retry: vhRetry ? readRetryPolicy(vhRetry) : undefined,
    mirrors: r.list('request_mirror_policies').map(readMirror),
  };
  const routes = r.list('routes').map((route) => readRoute(route, defaults));
  return Object.freeze({ name, domains: Object.freeze(domains.map((d) => d.toLowerCase())), routes: Object.freeze(routes) });
}

interface RouteDefaults {
  readonly retry: RetryPolicyModel | undefined;
  readonly mirrors: readonly MirrorModel[];
}

function readRoute(r: FieldReader, defaults: RouteDefaults): RouteModel {
  const name = r.string('name') ?? '';
  const headerMutations = readHeaderMutations(r);
  r.declare(SUPPORT.Route);
  const m = r.message('match');
  if (!m) throw r.error('match', 'must be set');
  const match = readMatch(m);
  const route = r.message('route');
  const redirect = r.message('redirect');
  const direct = r.message('direct_response');
  let action: RouteActionModel;
  if (route) action = readForward(route, defaults);
  else if (redirect) action = readRedirect(redirect);
  else if (direct) action = readDirect(direct);
  else throw r.error('', 'a route needs an action (route, redirect or direct_response)');
  return Object.freeze({ name, match, action, headerMutations });
}

/** The four header-mutation fields of a Route or a ClusterWeight; undefined when none is set. */
function readHeaderMutations(r: FieldReader): HeaderMutationModel | undefined {
  const requestAdd = r.list('request_headers_to_add').flatMap((o) => readHeaderValueOption(o) ?? []);
  const requestRemove = readRemovals(r, 'request_headers_to_remove');
  const responseAdd = r.list('response_headers_to_add').flatMap((o) => readHeaderValueOption(o) ?? []);
  const responseRemove = readRemovals(r, 'response_headers_to_remove');
  if (requestAdd.length + requestRemove.length + responseAdd.length + responseRemove.length === 0) return undefined;
  return Object.freeze({
    requestAdd: Object.freeze(requestAdd),
    requestRemove: Object.freeze(requestRemove),
    responseAdd: Object.freeze(responseAdd),
    responseRemove: Object.freeze(responseRemove),
  });
}

/** Envoy refuses mutations of pseudo-headers and Host (host rewrites have their own fields). */
function mutableHeaderName(r: FieldReader, key: string, name: string): string {
  const lower = name.toLowerCase();
  if (lower.startsWith(':') || lower === 'host') throw r.error(key, `'${name}': :-prefixed or host headers may not be modified`);
  return lower;
}

function readRemovals(r: FieldReader, key: string): string[] {
  return r.stringList(key).map((name) => mutableHeaderName(r, key, name));
}

/** A HeaderValueOption; undefined for an empty value Envoy would not add (keep_empty_value unset). */
function readHeaderValueOption(r: FieldReader): HeaderAddModel | undefined {
  const h = r.message('header');
  if (!h) throw r.error('header', 'must be set');
  const name = mutableHeaderName(h, 'key', h.requiredString('key'));
  const value = literalValue(h, 'value', h.string('value') ?? '');
  const legacy = r.wrappedBool('append');
  if (legacy !== undefined && r.has('append_action')) throw r.error('append', 'cannot be combined with append_action');
  const action =
    legacy !== undefined
      ? legacy
        ? 'APPEND_IF_EXISTS_OR_ADD'
        : 'OVERWRITE_IF_EXISTS_OR_ADD'
      : r.enumOf('append_action', HEADER_APPEND_ACTIONS, 'APPEND_IF_EXISTS_OR_ADD');
  const keepEmpty = r.bool('keep_empty_value');
  if (value === '' && !keepEmpty) return undefined;
  return Object.freeze({ name, value, action });
}

/**
 * Envoy reads header values as format strings: `%%` is a literal `%`, and `%COMMAND%` is
 * substituted per request. Only literal values are implemented; a command is refused by name.
 */
function literalValue(r: FieldReader, key: string, text: string): string {
  if (!text.includes('%')) return text;
  if (!/^(?:[^%]|%%)*$/.test(text)) throw r.error(key, `'${text}': format commands (%...%) in header values are not implemented (%% is a literal %)`);
  return text.replaceAll('%%', '%');
}

function readMatch(r: FieldReader): RouteMatchModel {
  const caseSensitive = r.wrappedBool('case_sensitive') ?? true;
  const prefix = r.string('prefix');
  const path = r.string('path');
  const separated = r.string('path_separated_prefix');
  const safeRegex = r.message('safe_regex');
  r.declare(SUPPORT['Route.match']);
  const rf = r.message('runtime_fraction');
  const fraction = rf ? readRuntimeFraction(rf) : undefined;
  const grpc = r.message('grpc');
  const headers = r.list('headers').map(readHeaderMatcher);
  const query = r.list('query_parameters').map(readQueryMatcher);
  let kind: RouteMatchModel['kind'];
  let value = '';
  let regex: Regex | undefined;
  if (prefix !== undefined) {
    kind = 'prefix';
    value = prefix;
  } else if (path !== undefined) {
    kind = 'path';
    value = path;
  } else if (separated !== undefined) {
    kind = 'separated';
    value = separated;
  } else if (safeRegex) {
    kind = 'regex';
    regex = readRegexMatcher(safeRegex, !caseSensitive);
  } else {
    // proto3: an empty RouteMatch is `prefix: ""`, which matches everything.
    kind = 'prefix';
  }
  if (!caseSensitive) value = value.toLowerCase();
  return Object.freeze({
    kind,
    value,
    regex,
    caseSensitive,
    headers: Object.freeze(headers),
    query: Object.freeze(query),
    grpcOnly: grpc !== undefined,
    fraction,
  });
}

function readHeaderMatcher(r: FieldReader): HeaderMatcherModel {
  const name = r.requiredString('name').toLowerCase();
  const invert = r.bool('invert_match');
  const missingAsEmpty = r.bool('treat_missing_header_as_empty');
  let test: (v: string) => boolean;
  const exact = r.string('exact_match');
  const prefix = r.string('prefix_match');
  const suffix = r.string('suffix_match');
  const contains = r.string('contains_match');
  const safeRegex = r.message('safe_regex_match');
  const range = r.message('range_match');
  const sm = r.message('string_match');
  const present = r.has('present_match') ? r.bool('present_match') : undefined;
  if (exact !== undefined) test = (v) => v === exact;
  else if (prefix !== undefined) test = (v) => v.startsWith(prefix);
  else if (suffix !== undefined) test = (v) => v.endsWith(suffix);
  else if (contains !== undefined) test = (v) => v.includes(contains);
  else if (safeRegex) {
    const re = readRegexMatcher(safeRegex);
    test = (v) => re.testExact(v);
  } else if (range) {
    const start = range.number('start') ?? 0;
    const end = range.number('end') ?? 0;
    test = (v) => {
      if (!/^-?\d+$/.test(v)) return false;
      const n = Number(v);
      return n >= start && n < end;
    };
  } else if (sm) {
    test = readStringMatcher(sm);
  } else {
    // present_match (true/false) or no specifier at all (= present).
    const want = present ?? true;
    return Object.freeze({ name, test: (v: string | undefined) => ((v !== undefined) === want) !== invert });
  }
  return Object.freeze({
    name,
    test: (v: string | undefined): boolean => {
      const value = v ?? (missingAsEmpty ? '' : undefined);
      // A missing header never matches, inverted or not (Envoy's rule), unless treated as empty.
      if (value === undefined) return false;
      return test(value) !== invert;
    },
  });
}

function readQueryMatcher(r: FieldReader): QueryMatcherModel {
  const name = r.requiredString('name');
  const sm = r.message('string_match');
  r.declare(SUPPORT['Route.match.query_parameters']);
  return Object.freeze({ name, test: sm ? readStringMatcher(sm) : undefined });
}

function readMirror(r: FieldReader): MirrorModel {
  const cluster = r.requiredString('cluster');
  r.declare(SUPPORT['RouteAction.request_mirror_policies']);
  const rf = r.message('runtime_fraction');
  const fraction = rf ? readRuntimeFraction(rf) : Object.freeze({ numerator: 100, denominator: 100 });
  return Object.freeze({ cluster, fraction, disableSuffix: r.bool('disable_shadow_host_suffix_append') });
}

function readHashPolicy(r: FieldReader): HashPolicyModel {
  const terminal = r.bool('terminal');
  const header = r.message('header');
  const conn = r.message('connection_properties');
  const query = r.message('query_parameter');
  const cookie = r.message('cookie');
  r.declare(SUPPORT['RouteAction.hash_policy']);
  if (header) {
    header.declare(SUPPORT['RouteAction.hash_policy.header']);
    return Object.freeze({ kind: 'header', name: header.requiredString('header_name').toLowerCase(), terminal });
  }
  if (conn) {
    if (!conn.bool('source_ip')) throw conn.error('source_ip', 'must be true');
    return Object.freeze({ kind: 'source_ip', terminal });
  }
  if (query) return Object.freeze({ kind: 'query', name: query.requiredString('name'), terminal });
  if (cookie) {
    cookie.declare(SUPPORT['RouteAction.hash_policy.cookie']);
    return Object.freeze({ kind: 'cookie', name: cookie.requiredString('name'), terminal });
  }
  throw r.error('', 'a hash policy needs header, connection_properties, query_parameter or cookie');
}

function readForward(r: FieldReader, defaults: RouteDefaults): ForwardActionModel {
  const cluster = r.string('cluster') || undefined;
  const clusterHeader = r.string('cluster_header') || undefined;
  const wc = r.message('weighted_clusters');
  r.declare(SUPPORT.RouteAction);
  let weighted: WeightedTarget[] | undefined;
  let totalWeight = 0;
  if (wc) {
    weighted = wc.list('clusters').map((c) => {
      const headerMutations = readHeaderMutations(c);
      c.declare(SUPPORT['RouteAction.weighted_clusters.clusters']);
      const weight = c.wrapped('weight') ?? 0;
      return Object.freeze({ name: c.requiredString('name'), weight, hostRewrite: c.string('host_rewrite_literal') || undefined, headerMutations });
    });
    weighted = weighted.filter((w) => w.weight > 0);
    totalWeight = weighted.reduce((s, w) => s + w.weight, 0);
    const declared = wc.wrapped('total_weight');
    if (declared !== undefined && declared !== 0 && declared !== totalWeight) {
      throw wc.error('total_weight', `is ${declared} but the cluster weights add up to ${totalWeight}`);
    }
    if (totalWeight === 0) throw wc.error('clusters', 'the weights add up to 0');
    wc.declare(SUPPORT['RouteAction.weighted_clusters']);
  }
  if ([cluster, clusterHeader, weighted].filter((x) => x !== undefined).length !== 1) {
    throw r.error('', 'exactly one of cluster, cluster_header, weighted_clusters must be set');
  }
  const nf = r.enumOf('cluster_not_found_response_code', ['SERVICE_UNAVAILABLE', 'NOT_FOUND', 'INTERNAL_SERVER_ERROR'] as const, 'SERVICE_UNAVAILABLE');
  const prefixRewrite = r.string('prefix_rewrite');
  const rr = r.message('regex_rewrite');
  const regexRewrite = rr ? readRegexRewrite(rr) : undefined;
  if (prefixRewrite !== undefined && regexRewrite) throw r.error('regex_rewrite', 'cannot be combined with prefix_rewrite');
  const hostRewrite = r.string('host_rewrite_literal') || undefined;
  const hostRewriteHeader = r.string('host_rewrite_header') || undefined;
  if (r.wrappedBool('auto_host_rewrite')) throw r.error('auto_host_rewrite', 'not implemented (endpoints carry no host names)');
  const timeoutMs = r.has('timeout') ? (r.durationMs('timeout') ?? 0) : 15_000;
  const retryMsg = r.message('retry_policy');
  const retry = retryMsg ? readRetryPolicy(retryMsg) : defaults.retry;
  const own = r.list('request_mirror_policies').map(readMirror);
  const mirrors = own.length > 0 ? own : defaults.mirrors;
  const highPriority = r.enumOf('priority', ['DEFAULT', 'HIGH'] as const, 'DEFAULT') === 'HIGH';
  const hashPolicies = r.list('hash_policy').map(readHashPolicy);
  for (const u of r.list('upgrade_configs')) {
    u.requiredString('upgrade_type');
    u.declare(SUPPORT['RouteAction.upgrade_configs']);
    if (u.wrappedBool('enabled') !== false) throw u.error('', 'protocol upgrades (WebSocket) are not implemented');
  }
  return Object.freeze({
    kind: 'forward' as const,
    cluster,
    clusterHeader: clusterHeader?.toLowerCase(),
    weighted: weighted ? Object.freeze(weighted) : undefined,
    totalWeight,
    notFoundStatus: nf === 'NOT_FOUND' ? 404 : nf === 'INTERNAL_SERVER_ERROR' ? 500 : 503,
    prefixRewrite,
    regexRewrite,
    hostRewrite,
    hostRewriteHeader: hostRewriteHeader?.toLowerCase(),
    timeoutMs,
    retry,
    mirrors: Object.freeze(mirrors),
    hashPolicies: Object.freeze(hashPolicies),
    highPriority,
  });
}

const REDIRECT_CODES: Readonly<Record<string, number>> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

function readRedirect(r: FieldReader): RedirectActionModel {
  const code = r.enumOf('response_code', Object.keys(REDIRECT_CODES), 'MOVED_PERMANENTLY');
  const https = r.bool('https_redirect');
  const scheme = https ? 'https' : r.string('scheme_redirect') || undefined;
  r.declare(SUPPORT.RedirectAction);
  const port = r.number('port_redirect');
  return Object.freeze({
    kind: 'redirect' as const,
    status: REDIRECT_CODES[code] ?? 301,
    scheme,
    host: r.string('host_redirect') || undefined,
    port: port || undefined,
    path: r.string('path_redirect') || undefined,
    prefixRewrite: r.string('prefix_rewrite'),
    stripQuery: r.bool('strip_query'),
  });
}

function readDirect(r: FieldReader): DirectActionModel {
  const status = r.number('status') ?? 0;
  if (status < 200 || status > 599) throw r.error('status', 'must be within [200, 600)');
  const body = r.message('body');
  let bytes: Buffer | undefined;
  if (body) {
    const s = body.string('inline_string');
    const b = body.string('inline_bytes');
    body.declare(SUPPORT['DirectResponseAction.body']);
    bytes = s !== undefined ? Buffer.from(s) : b !== undefined ? Buffer.from(b, 'base64') : Buffer.alloc(0);
  }
  return Object.freeze({ kind: 'direct' as const, status, body: bytes });
}
