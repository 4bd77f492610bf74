/**
 * Make before break, checked on the wire: watches the responses a running serve() sends one node
 * and records every CDS response that leaves out a cluster the routes the node holds still name
 * (the RDS it ACKed, or was sent and has not answered yet), and every NACK of the node (a stage
 * the client rejects counts as answered, so a rejected stage would pass unseen). In: the app, the
 * node id. Out: the list of such breaks (empty when removals wait for the routes,
 * src/cache/make-before-break.ts) and of NACKs.
 */
import type { RunningApp } from '../../src/app.js';
import type { Snapshot } from '../../src/cache/snapshot.js';
import type { NackEvent, ResponseEvent } from '../../src/server/index.js';
import { TypeUrl } from '../../src/xds/resource-types.js';
import { routedClusters } from '../../src/translate/client-split.js';

/** Every cluster the snapshot's route configurations send to (no mirrors in these tests). */
function routed(snapshot: Snapshot | undefined): Set<string> {
  return new Set((snapshot?.type(TypeUrl.RouteConfiguration).list ?? []).flatMap((r) => routedClusters(r.object)));
}

export interface RemovalOrderWatch {
  /** One line per CDS response that dropped a cluster the node's routes still named. */
  readonly breaks: readonly string[];
  /** One line per NACK of the node: type, version, message. */
  readonly nacks: readonly string[];
  stop(): void;
}

export function watchRemovalOrder(app: RunningApp, nodeId: string): RemovalOrderWatch {
  const registry = app.xdsServer.registry;
  const routedBy = new Map<string, Set<string>>();
  const breaks: string[] = [];
  const onResponse = (e: ResponseEvent): void => {
    if (e.nodeId !== nodeId) return;
    const node = registry.nodeStatus(nodeId);
    // The response event comes synchronously from the stream's evaluation of what the cache holds.
    const served = node === undefined ? undefined : app.cache.get(node.group);
    if (e.type === 'RDS') routedBy.set(e.version, routed(served));
    if (e.type !== 'CDS') return;
    const rds = node?.types.RDS;
    const held = new Set([...(routedBy.get(rds?.ackedVersion ?? '') ?? []), ...((rds?.pendingNonce && routedBy.get(rds.sentVersion ?? '')) || [])]);
    const missing = [...held].filter((c) => !served?.type(TypeUrl.Cluster).resources.has(c));
    if (missing.length > 0) breaks.push(`CDS ${e.version} without ${missing.join(',')} while the routes ${nodeId} holds name them`);
  };
  const nacks: string[] = [];
  const onNack = (e: NackEvent): void => {
    if (e.nodeId === nodeId) nacks.push(`${e.type} ${e.version}: ${e.message}`);
  };
  registry.on('response', onResponse);
  registry.on('nack', onNack);
  return {
    breaks,
    nacks,
    stop: () => {
      registry.off('response', onResponse);
      registry.off('nack', onNack);
    },
  };
}
