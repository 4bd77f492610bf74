/**
 * The load balancer's health answer for this sidecar (seed 001: the LB checks the xds-server,
 * not Envoy). In: the maintenance file, the snapshot cache, the stream registry's per-node state,
 * and optionally the local Envoy's admin (/ready, /server_info). Out: a HealthReport - 200 `OK`,
 * 599 `MAINTENANCE`, or 503 with a JSON body listing every reason.
 *
 * Whose state decides (the local Envoy, never a stranger that happens to connect):
 *  - `watchNode` (--watch-node) when given;
 *  - else, with `envoyAdminUrl` (--envoy-admin), the node id the local Envoy's admin reports in
 *    /server_info. The id is kept while that node has an xDS stream open, and asked again while
 *    it has none (Envoy restarting, or started with another id): one GET per health check only
 *    while health fails anyway. An admin that does not answer -> 503 `local-node-unknown`;
 *  - else (neither given) any connected client may vouch: 200 needs at least one connected
 *    client that has ACKed a version and has no problem (up to date, or behind by less than the
 *    ACK grace). Problems of the other clients are listed in the answer (`others`, in a JSON body
 *    with status 200) but do not fail health, so a client that never ACKs cannot take the
 *    instance out of rotation. With no client good, every client's problems fail health.
 *
 * Decision, in order (evaluateHealth is the pure part, unit-tested):
 *  1. The maintenance file exists (fs.stat on every request: no cached, stale answer) -> 599.
 *  2. No snapshot has been published yet -> 503 `no-snapshot`.
 *  3. The deciding node (above) is not connected -> 503 `node-not-connected`; no client at all
 *     (default rule) -> 503 `no-envoy-connected`: an Envoy that is not talking to us is not
 *     serving our config.
 *  4. Per judged node and subscribed type:
 *     - it NACKed the version the cache holds now -> `nacked` (at once: it runs an older config
 *       than the one we mean it to, and will not get a new one until the config changes). A
 *       node that ACKed exactly the current version is fine even after a NACK (the config was
 *       rolled back to what it runs); a NACK of a version since replaced is an outstanding
 *       update like any other (below);
 *     - it was sent this type but never ACKed any version -> `awaiting-first-ack` (at once:
 *       it has nothing of this type yet, so it cannot serve);
 *     - it ACKed an older version and the current one has been outstanding longer than `graceMs`
 *       -> `ack-overdue` (within the grace period it still serves the previous good config).
 *  5. `envoyAdminUrl` configured and Envoy's /ready is not `LIVE` -> `envoy-not-ready`.
 *  6. Otherwise 200 `OK` (a JSON body when other clients have problems to report).
 * The JSON body lists at most 20 problems (and 20 others), with a count of the rest.
 */
import fs from 'node:fs';
import { z } from 'zod';
import type { SnapshotCache } from '../cache/snapshot-cache.js';
import type { TypeShort } from '../cache/snapshot.js';
import type { NodeStatus, StreamRegistry, XdsEvent } from '../server/stream-registry.js';
import type { StreamStatus } from '../server/stream-state.js';

export type HealthReason =
  | 'no-snapshot'
  | 'no-envoy-connected'
  | 'node-not-connected'
  | 'local-node-unknown'
  | 'nacked'
  | 'awaiting-first-ack'
  | 'ack-overdue'
  | 'envoy-not-ready';

export interface HealthProblem {
  readonly reason: HealthReason;
  readonly node?: string;
  readonly type?: TypeShort;
  readonly detail: string;
  /** ISO time the problem started (NACK time, or when the outstanding version was sent). */
  readonly since?: string;
}

export interface HealthReport {
  readonly status: 200 | 503 | 599;
  readonly contentType: 'text/plain; charset=utf-8' | 'application/json';
  readonly body: string;
  /** What fails health. */
  readonly problems: readonly HealthProblem[];
  /** Problems of connected clients that do not decide health (default rule, while one client is good). */
  readonly others: readonly HealthProblem[];
}

export interface EnvoyReadiness {
  readonly live: boolean;
  /** Envoy's /ready body (LIVE, PRE_INITIALIZING, INITIALIZING, DRAINING) or the error. */
  readonly state: string;
}

export interface HealthInput {
  readonly maintenance: boolean;
  readonly hasSnapshot: boolean;
  /** The node whose state decides (--watch-node, or the one Envoy's admin reported); absent: any connected client may. */
  readonly localNode?: string;
  /** Why the local node's id is not known (Envoy's admin did not say); fails health. */
  readonly localNodeUnknown?: string;
  /** With localNode: that node's status if it is connected. Without: every connected node's. */
  readonly nodes: readonly NodeStatus[];
  /** Whether the node's group has a snapshot. */
  readonly groupHasSnapshot: (group: string) => boolean;
  /** When a node's type got its oldest still-unACKed response (epoch ms), if known. */
  readonly outstandingSince: (nodeId: string, type: TypeShort) => number | undefined;
  readonly now: number;
  readonly graceMs: number;
  readonly envoy?: EnvoyReadiness;
}

const NONE: readonly HealthProblem[] = Object.freeze([]);
const OK: HealthReport = Object.freeze({ status: 200, contentType: 'text/plain; charset=utf-8', body: 'OK', problems: NONE, others: NONE });
const MAINTENANCE: HealthReport = Object.freeze({
  status: 599,
  contentType: 'text/plain; charset=utf-8',
  body: 'MAINTENANCE',
  problems: NONE,
  others: NONE,
});
/** Problems listed per list in the JSON body; a load balancer polls it, so it stays small. */
const MAX_LISTED = 20;

export function evaluateHealth(input: HealthInput): HealthReport {
  if (input.maintenance) return MAINTENANCE;
  const problems: HealthProblem[] = [];
  let others: HealthProblem[] = [];
  if (!input.hasSnapshot) {
    problems.push({ reason: 'no-snapshot', detail: 'no valid snapshot has been published yet' });
  }
  if (input.localNodeUnknown !== undefined) {
    problems.push({ reason: 'local-node-unknown', detail: input.localNodeUnknown });
  } else if (input.localNode !== undefined) {
    if (input.nodes.length === 0) {
      problems.push({ reason: 'node-not-connected', node: input.localNode, detail: `Envoy node '${input.localNode}' has no xDS stream open` });
    }
    for (const node of input.nodes) problems.push(...nodeProblems(node, input));
  } else if (input.nodes.length === 0) {
    problems.push({ reason: 'no-envoy-connected', detail: 'no xDS client is connected' });
  } else {
    // Any one good client vouches; a client with no problem that has accepted nothing yet is
    // not good (it serves nothing of ours) and is listed as waiting.
    let good = false;
    const found: HealthProblem[] = [];
    for (const node of input.nodes) {
      const own = nodeProblems(node, input);
      const acked = Object.values(node.types).some((t) => t?.ackedVersion !== undefined);
      if (own.length === 0 && acked) good = true;
      else if (own.length === 0) found.push({ reason: 'awaiting-first-ack', node: node.nodeId, detail: `node '${node.nodeId}' has not ACKed any version yet` });
      else found.push(...own);
    }
    if (good) others = found;
    else problems.push(...found);
  }
  if (input.envoy && !input.envoy.live) {
    problems.push({ reason: 'envoy-not-ready', detail: `Envoy admin /ready says ${input.envoy.state}` });
  }
  if (problems.length === 0 && others.length === 0) return OK;
  const status = problems.length === 0 ? 200 : 503;
  return Object.freeze({
    status,
    contentType: 'application/json',
    body: JSON.stringify({
      status: status === 200 ? 'OK' : 'NOT_READY',
      ...listed('problems', problems),
      ...listed('others', others),
    }),
    problems: Object.freeze(problems),
    others: Object.freeze(others),
  });
}

/** `{key: first MAX_LISTED, keyNotShown: the rest's count}`; nothing for an empty list but `problems`. */
function listed(key: 'problems' | 'others', list: readonly HealthProblem[]): Record<string, unknown> {
  if (list.length === 0) return key === 'problems' ? { problems: [] } : {};
  return { [key]: list.slice(0, MAX_LISTED), ...(list.length > MAX_LISTED ? { [`${key}NotShown`]: list.length - MAX_LISTED } : {}) };
}

/** One node's problems, per subscribed type (rule 4 of the header). */
function nodeProblems(node: NodeStatus, input: HealthInput): HealthProblem[] {
  if (input.hasSnapshot && !input.groupHasSnapshot(node.group)) {
    return [{ reason: 'no-snapshot', node: node.nodeId, detail: `no snapshot for group '${node.group}' that node '${node.nodeId}' is served from` }];
  }
  const problems: HealthProblem[] = [];
  for (const [type, st] of Object.entries(node.types) as Array<[TypeShort, NodeStatus['types'][TypeShort]]>) {
    if (!st || st.upToDate) continue;
    // It runs exactly what the cache holds now (e.g. the config was rolled back to the version
    // it last ACKed, after a NACK): nothing is wrong, whatever the NACK flag still says.
    if (st.currentVersion !== undefined && st.ackedVersion === st.currentVersion && st.pendingNonce === undefined) continue;
    if (st.lastResponseNacked && (st.currentVersion === undefined || st.lastNack?.version === st.currentVersion)) {
      problems.push({
        reason: 'nacked',
        node: node.nodeId,
        type,
        detail: `node '${node.nodeId}' rejected ${type} version ${st.lastNack?.version ?? '?'}: ${st.lastNack?.message ?? ''}`,
        ...(st.lastNack ? { since: st.lastNack.at } : {}),
      });
      continue;
    }
    const since = input.outstandingSince(node.nodeId, type);
    if (st.ackedVersion === undefined) {
      if (st.sentVersion === undefined && since === undefined) continue; // nothing sent yet: not our answer to wait for
      problems.push({
        reason: 'awaiting-first-ack',
        node: node.nodeId,
        type,
        detail: `node '${node.nodeId}' has not ACKed any ${type} version yet (sent ${st.sentVersion ?? 'nothing yet'})`,
        ...(since !== undefined ? { since: new Date(since).toISOString() } : {}),
      });
      continue;
    }
    if (since !== undefined && input.now - since > input.graceMs) {
      problems.push({
        reason: 'ack-overdue',
        node: node.nodeId,
        type,
        detail: `node '${node.nodeId}' still runs ${type} version ${st.ackedVersion}; ${st.currentVersion ?? st.sentVersion ?? '?'} is unACKed after ${input.now - since} ms (grace ${input.graceMs} ms)`,
        since: new Date(since).toISOString(),
      });
    }
  }
  return problems;
}

/** Seed 001's rule: the file counts as present exactly when stat succeeds. */
export async function maintenanceFileExists(file: string | undefined): Promise<boolean> {
  if (file === undefined) return false;
  try {
    await fs.promises.stat(file);
    return true;
  } catch {
    return false;
  }
}

/** GET {adminUrl}/ready: LIVE with 200 is ready; anything else (or no answer in time) is not. */
export async function probeEnvoyReady(adminUrl: string, timeoutMs: number): Promise<EnvoyReadiness> {
  try {
    const res = await fetch(new URL('/ready', adminUrl), { signal: AbortSignal.timeout(timeoutMs) });
    const state = (await res.text()).trim();
    return { live: res.status === 200 && state === 'LIVE', state: state || `HTTP ${res.status}` };
  } catch (err) {
    return { live: false, state: `unreachable (${(err as Error).message})` };
  }
}

/** The part of Envoy's /server_info (ours too: src/proxy/admin/admin-server.ts) that names the node. */
const ServerInfoSchema = z.object({ node: z.object({ id: z.string().min(1) }) });

/** GET {adminUrl}/server_info and read `node.id`: the id of the Envoy whose admin that is. */
export async function fetchEnvoyNodeId(adminUrl: string, timeoutMs: number): Promise<{ readonly id: string } | { readonly error: string }> {
  const url = new URL('/server_info', adminUrl);
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    if (res.status !== 200) return { error: `Envoy admin ${url.href} answered HTTP ${res.status}` };
    const info = ServerInfoSchema.safeParse(JSON.parse(text));
    if (!info.success) return { error: `Envoy admin ${url.href} names no node.id` };
    return { id: info.data.node.id };
  } catch (err) {
    return { error: `Envoy admin ${url.href} did not say which node it is: ${(err as Error).message}` };
  }
}

export interface HealthCheckerOptions {
  readonly cache: SnapshotCache;
  readonly registry: StreamRegistry;
  readonly maintenanceFile?: string;
  /** Node id whose state decides health (default: the one Envoy's admin reports, else any good client). */
  readonly watchNode?: string;
  /** How long a connected node may run an older ACKed version before we report it (default 10 s). */
  readonly graceMs?: number;
  /** The local Envoy's admin base URL (e.g. http://127.0.0.1:9901): /ready must say LIVE, /server_info names the node. */
  readonly envoyAdminUrl?: string;
  readonly envoyReadyTimeoutMs?: number;
}

/**
 * Live health for the admin server: keeps, per connected node and type, when its oldest still
 * unanswered response was sent (from the registry's events), and evaluates on every request.
 * Memory: one entry per connected node and type, removed on ACK and when the node disconnects.
 */
export class HealthChecker {
  readonly watchNode?: string;
  readonly graceMs: number;
  private readonly opts: HealthCheckerOptions;
  private readonly outstanding = new Map<string, number>();
  /** The node id the local Envoy's admin reported last (--envoy-admin without --watch-node). */
  private envoyNodeId: string | undefined;
  private readonly onResponse = (e: XdsEvent) => {
    const key = outstandingKey(e.nodeId, e.type);
    if (!this.outstanding.has(key)) this.outstanding.set(key, Date.now());
  };
  /** ACK or NACK: the response was answered; the next one starts a new clock. */
  private readonly onAnswer = (e: XdsEvent) => {
    this.outstanding.delete(outstandingKey(e.nodeId, e.type));
  };
  private readonly onClose = (s: StreamStatus) => {
    if (this.opts.registry.nodeStatus(s.nodeId) !== undefined) return; // another stream of that node lives on
    for (const t of ['CDS', 'EDS', 'LDS', 'RDS'] as const) this.outstanding.delete(outstandingKey(s.nodeId, t));
  };

  constructor(opts: HealthCheckerOptions) {
    this.opts = opts;
    this.watchNode = opts.watchNode;
    this.graceMs = opts.graceMs ?? 10_000;
    opts.registry.on('response', this.onResponse);
    opts.registry.on('ack', this.onAnswer);
    opts.registry.on('nack', this.onAnswer);
    opts.registry.on('stream-close', this.onClose);
  }

  /** Whose state decides, for the start-up log line. */
  describeRule(): string {
    if (this.watchNode !== undefined) return `node '${this.watchNode}' (--watch-node)`;
    if (this.opts.envoyAdminUrl !== undefined) return `the node ${this.opts.envoyAdminUrl}/server_info names`;
    return 'any connected client: at least one must be up to date';
  }

  async check(): Promise<HealthReport> {
    const { cache, registry } = this.opts;
    // Maintenance first: the answer an operator expects right after touching the file.
    if (await maintenanceFileExists(this.opts.maintenanceFile)) return MAINTENANCE;
    const timeoutMs = this.opts.envoyReadyTimeoutMs ?? 1000;
    const adminUrl = this.opts.envoyAdminUrl;
    const [envoy, local] = await Promise.all([adminUrl ? probeEnvoyReady(adminUrl, timeoutMs) : undefined, this.localNode()]);
    const ids = local === undefined ? registry.nodes() : 'id' in local ? [local.id] : [];
    const nodes: NodeStatus[] = [];
    for (const id of ids) {
      const st = registry.nodeStatus(id);
      if (st) nodes.push(st);
    }
    // Re-check: the file may have appeared while Envoy's admin was being asked.
    const maintenance = await maintenanceFileExists(this.opts.maintenanceFile);
    return evaluateHealth({
      maintenance,
      hasSnapshot: cache.groups().length > 0,
      ...(local === undefined ? {} : 'id' in local ? { localNode: local.id } : { localNodeUnknown: local.error }),
      nodes,
      groupHasSnapshot: (g) => cache.get(g) !== undefined,
      outstandingSince: (node, type) => this.outstanding.get(outstandingKey(node, type)),
      now: Date.now(),
      graceMs: this.graceMs,
      ...(envoy ? { envoy } : {}),
    });
  }

  /**
   * The deciding node: --watch-node; else the id Envoy's admin reports, kept while that node is
   * connected (a restarted Envoy drops its stream, so its id is asked again); else undefined.
   */
  private async localNode(): Promise<{ readonly id: string } | { readonly error: string } | undefined> {
    if (this.watchNode !== undefined) return { id: this.watchNode };
    const adminUrl = this.opts.envoyAdminUrl;
    if (adminUrl === undefined) return undefined;
    if (this.envoyNodeId !== undefined && this.opts.registry.nodeStatus(this.envoyNodeId) !== undefined) return { id: this.envoyNodeId };
    const found = await fetchEnvoyNodeId(adminUrl, this.opts.envoyReadyTimeoutMs ?? 1000);
    this.envoyNodeId = 'id' in found ? found.id : undefined;
    return found;
  }

  close(): void {
    this.opts.registry.off('response', this.onResponse);
    this.opts.registry.off('ack', this.onAnswer);
    this.opts.registry.off('nack', this.onAnswer);
    this.opts.registry.off('stream-close', this.onClose);
  }
}

function outstandingKey(nodeId: string, type: TypeShort): string {
  return `${nodeId}\n${type}`;
}
