/**
 * The load balancer's health answer for this sidecar (seed 001: the LB checks the xds-server,
 * not Envoy). In: the maintenance file, the snapshot cache, the stream registry's per-node state,
 * and optionally Envoy's admin /ready. Out: a HealthReport - 200 `OK`, 599 `MAINTENANCE`, or 503
 * with a JSON body listing every reason.
 *
 * Decision, in order (evaluateHealth is the pure part, unit-tested):
 *  1. The maintenance file exists (fs.stat on every request: no cached, stale answer) -> 599.
 *  2. No snapshot has been published yet -> 503 `no-snapshot`.
 *  3. Watched nodes: `watchNode` when configured, else every node connected right now. None
 *     connected -> 503 (`node-not-connected` / `no-envoy-connected`): an Envoy that is not talking
 *     to us is not serving our config.
 *  4. Per watched node and subscribed type:
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
 *  6. Otherwise 200 `OK`.
 */
import fs from 'node:fs';
import type { SnapshotCache } from '../cache/snapshot-cache.js';
import type { TypeShort } from '../cache/snapshot.js';
import type { NodeStatus, StreamRegistry, XdsEvent } from '../server/stream-registry.js';
import type { StreamStatus } from '../server/stream-state.js';

export type HealthReason =
  | 'no-snapshot'
  | 'no-envoy-connected'
  | 'node-not-connected'
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
  readonly problems: readonly HealthProblem[];
}

export interface EnvoyReadiness {
  readonly live: boolean;
  /** Envoy's /ready body (LIVE, PRE_INITIALIZING, INITIALIZING, DRAINING) or the error. */
  readonly state: string;
}

export interface HealthInput {
  readonly maintenance: boolean;
  readonly hasSnapshot: boolean;
  readonly watchNode?: string;
  /** Status of each watched node that is connected (from StreamRegistry.nodeStatus). */
  readonly nodes: readonly NodeStatus[];
  /** Whether the node's group has a snapshot. */
  readonly groupHasSnapshot: (group: string) => boolean;
  /** When a node's type got its oldest still-unACKed response (epoch ms), if known. */
  readonly outstandingSince: (nodeId: string, type: TypeShort) => number | undefined;
  readonly now: number;
  readonly graceMs: number;
  readonly envoy?: EnvoyReadiness;
}

const OK: HealthReport = Object.freeze({ status: 200, contentType: 'text/plain; charset=utf-8', body: 'OK', problems: Object.freeze([]) });
const MAINTENANCE: HealthReport = Object.freeze({
  status: 599,
  contentType: 'text/plain; charset=utf-8',
  body: 'MAINTENANCE',
  problems: Object.freeze([]),
});

export function evaluateHealth(input: HealthInput): HealthReport {
  if (input.maintenance) return MAINTENANCE;
  const problems: HealthProblem[] = [];
  if (!input.hasSnapshot) {
    problems.push({ reason: 'no-snapshot', detail: 'no valid snapshot has been published yet' });
  }
  if (input.nodes.length === 0) {
    problems.push(
      input.watchNode !== undefined
        ? { reason: 'node-not-connected', node: input.watchNode, detail: `Envoy node '${input.watchNode}' has no xDS stream open` }
        : { reason: 'no-envoy-connected', detail: 'no xDS client is connected' },
    );
  }
  for (const node of input.nodes) {
    if (input.hasSnapshot && !input.groupHasSnapshot(node.group)) {
      problems.push({ reason: 'no-snapshot', node: node.nodeId, detail: `no snapshot for group '${node.group}' that node '${node.nodeId}' is served from` });
      continue;
    }
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
  }
  if (input.envoy && !input.envoy.live) {
    problems.push({ reason: 'envoy-not-ready', detail: `Envoy admin /ready says ${input.envoy.state}` });
  }
  if (problems.length === 0) return OK;
  return Object.freeze({
    status: 503,
    contentType: 'application/json',
    body: JSON.stringify({ status: 'NOT_READY', problems }),
    problems: Object.freeze(problems),
  });
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

export interface HealthCheckerOptions {
  readonly cache: SnapshotCache;
  readonly registry: StreamRegistry;
  readonly maintenanceFile?: string;
  /** Node id whose state decides health; default: every connected node. */
  readonly watchNode?: string;
  /** How long a connected node may run an older ACKed version before we report it (default 10 s). */
  readonly graceMs?: number;
  /** Envoy admin base URL (e.g. http://127.0.0.1:9901); when set, /ready must say LIVE. */
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

  async check(): Promise<HealthReport> {
    const { cache, registry } = this.opts;
    // Maintenance first: the answer an operator expects right after touching the file.
    if (await maintenanceFileExists(this.opts.maintenanceFile)) return MAINTENANCE;
    const ids = this.watchNode !== undefined ? [this.watchNode] : registry.nodes();
    const nodes: NodeStatus[] = [];
    for (const id of ids) {
      const st = registry.nodeStatus(id);
      if (st) nodes.push(st);
    }
    const envoy = this.opts.envoyAdminUrl ? await probeEnvoyReady(this.opts.envoyAdminUrl, this.opts.envoyReadyTimeoutMs ?? 1000) : undefined;
    // Re-check: the file may have appeared while Envoy's /ready was being asked.
    const maintenance = await maintenanceFileExists(this.opts.maintenanceFile);
    return evaluateHealth({
      maintenance,
      hasSnapshot: cache.groups().length > 0,
      ...(this.watchNode !== undefined ? { watchNode: this.watchNode } : {}),
      nodes,
      groupHasSnapshot: (g) => cache.get(g) !== undefined,
      outstandingSince: (node, type) => this.outstanding.get(outstandingKey(node, type)),
      now: Date.now(),
      graceMs: this.graceMs,
      ...(envoy ? { envoy } : {}),
    });
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
