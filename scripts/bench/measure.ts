/**
 * One benchmark run against one server (ours or a peer): the same steps for every server, so the
 * figures printed side by side were measured the same way.
 *
 * In: a Target (how to publish snapshot i to that server, read its memory, collect its garbage)
 * and the versions each snapshot carries. Out: a RunSummary.
 *
 * Steps: RSS with the initial snapshot set and no client; N clients connect (fresh load
 * generator processes), speaking SotW or Delta, and ACK the initial snapshot; the kernel must show
 * N established connections from the load generators to the server's port; RSS again; then W warm-up changes and C measured ones, each armed in the
 * load generator before it is published, measured from the publish stamp to receipt (and ACK) at
 * every client (bytes each client received are counted until the end of the quiet time after it,
 * so trailing re-sends count too). Warm-up changes run exactly like measured ones but are not counted: a long-running
 * server has its hot paths compiled (V8's JIT, Go's lazily built state); the first changes after
 * a start measure the compiler.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { TypeUrl } from '../../src/xds/resource-types.js';
import { LoadGenerators, type Tally } from './load-generator-handle.js';
import type { Expectation, Protocol } from './ipc.js';
import { connectionsTo, cpuMs, rssKb } from './proc.js';
import { changeStats, summarize, type ChangeStats, type RunSummary } from './stats.js';

export interface Target {
  readonly name: string;
  readonly port: number;
  /** Whose memory to read: the peer's pid, or 'self' for our in-process server. */
  readonly pid: number | 'self';
  /** Build snapshot i in the server and hold it (not measured). */
  prepare(i: number): Promise<void>;
  /** Publish the prepared snapshot. publishNs: CLOCK_MONOTONIC just before the server's cache took it. */
  publish(): Promise<{ publishNs: bigint; blockMs?: number }>;
  /** Collect garbage and hand free memory back, so RSS readings compare. */
  gc(): Promise<void>;
  /** When set, a CPU profile covering just the measured changes is taken (ours only). */
  profile?: { start(): Promise<void>; stop(): Promise<void> };
  close(): Promise<void>;
}

/** Per type URL: its version and its resources' content versions, by name. */
export type SnapshotFacts = Readonly<Record<string, { readonly version: string; readonly resources: ReadonlyMap<string, string> }>>;

export interface RunOptions {
  readonly baseNs: bigint;
  readonly protocol: Protocol;
  readonly clients: number;
  /** Load-generator processes the clients are spread over. */
  readonly loadProcesses: number;
  /** Snapshot 0 (initial) .. W + C. */
  readonly snapshots: readonly SnapshotFacts[];
  /** The first `warmup` changes are not counted. */
  readonly warmup: number;
  readonly connectConcurrency: number;
  /** Quiet time after connecting and between changes, so one change's tail does not overlap the next. */
  readonly settleMs: number;
  /** A change not delivered to every client by then is reported with its missing clients. */
  readonly changeTimeoutMs: number;
  /** Give up when the clients do not all hold the initial snapshot by then. */
  readonly readyTimeoutMs: number;
  readonly log: (line: string) => void;
}

function msSince(baseNs: bigint, ns: bigint): number {
  return Number(ns - baseNs) / 1e6;
}

/** What going from `prev` to `next` changes, per type that changes: the new version, the changed names. */
export function expectationOf(prev: SnapshotFacts, next: SnapshotFacts): Record<string, Expectation> {
  const out: Record<string, Expectation> = {};
  for (const [typeUrl, n] of Object.entries(next)) {
    const p = prev[typeUrl];
    if (p?.version === n.version) continue;
    const names = [...n.resources].filter(([name, version]) => p?.resources.get(name) !== version).map(([name]) => name);
    out[typeUrl] = { version: n.version, names };
  }
  return out;
}

/** The clients hold snapshot 0: its versions (SotW) and its resource counts (both protocols). */
function checkInitial(
  name: string,
  protocol: Protocol,
  ready: { versions: Record<string, string>; counts: Record<string, number> },
  initial: SnapshotFacts,
): void {
  for (const [typeUrl, facts] of Object.entries(initial)) {
    if (protocol === 'sotw' && ready.versions[typeUrl] !== facts.version) {
      throw new Error(`${name}: clients hold ${typeUrl} version ${ready.versions[typeUrl]}, expected ${facts.version}`);
    }
    if (ready.counts[typeUrl] !== facts.resources.size) {
      throw new Error(`${name}: clients hold ${ready.counts[typeUrl]} ${typeUrl} resources (-1: they differ), expected ${facts.resources.size}`);
    }
  }
}

export async function runTarget(target: Target, opts: RunOptions): Promise<RunSummary> {
  const { baseNs, clients, snapshots, protocol, log } = opts;
  await target.gc();
  const rssBeforeKb = rssKb(target.pid);

  const lg = new LoadGenerators(baseNs, opts.loadProcesses);
  try {
    const connectStart = msSince(baseNs, process.hrtime.bigint());
    log(`${target.name}: connecting ${clients} ${protocol} clients to 127.0.0.1:${target.port}`);
    const ready = await lg.start(target.port, protocol, clients, opts.connectConcurrency, opts.readyTimeoutMs);
    const connectAllMs = ready.readyAtMs - connectStart;
    checkInitial(target.name, protocol, ready, snapshots[0] ?? {});
    const connections = connectionsTo(target.port, lg.pids);
    if (connections !== clients) {
      throw new Error(
        `${target.name}: the kernel shows ${connections} established client connections to port ${target.port}, expected one per client (${clients})`,
      );
    }
    log(`${target.name}: ${clients} clients ready in ${connectAllMs.toFixed(0)} ms, ${connections} connections`);

    await sleep(opts.settleMs);
    await target.gc();
    const rssAfterKb = rssKb(target.pid);

    const perChange: ChangeStats[] = [];
    for (let i = 1; i < snapshots.length; i++) {
      const expect = expectationOf(snapshots[i - 1] ?? {}, snapshots[i] ?? {});
      if (i === opts.warmup + 1) await target.profile?.start();
      await target.prepare(i);
      await lg.arm(i, expect, opts.changeTimeoutMs);
      const tallyBefore: Tally = await lg.tally();
      const cpuBefore = cpuMs(target.pid);
      const { publishNs, blockMs } = await target.publish();
      const report = await lg.change();
      // The server is done with the change (ACKs included) by the end of the quiet time.
      await sleep(opts.settleMs);
      const serverCpu = cpuMs(target.pid) - cpuBefore;
      const bytesPerClient = ((await lg.tally()).bytes - tallyBefore.bytes) / clients;
      const stats = changeStats(report, msSince(baseNs, publishNs), TypeUrl.Cluster, serverCpu, bytesPerClient, blockMs);
      const counted = i > opts.warmup;
      if (counted) perChange.push(stats);
      log(
        `${target.name}: ${counted ? 'change' : 'warm-up change'} ${i}: p50 ${stats.p50.toFixed(1)} p99 ${stats.p99.toFixed(1)} max ${stats.max.toFixed(1)} ` +
          `all-acked ${stats.allAcked.toFixed(1)} ms ` +
          `(${Object.entries(stats.perType)
            .map(([t, v]) => `${t} p50 ${v.p50.toFixed(0)} p99 ${v.p99.toFixed(0)}`)
            .join(', ')}), ` +
          `${stats.responses} responses, ${stats.bytesPerClient.toFixed(0)} bytes/client, ` +
          `CPU server ${serverCpu.toFixed(0)} ms clients ${report.cpuMs.toFixed(0)} ms` +
          (blockMs !== undefined ? `, publish blocked ${blockMs.toFixed(1)} ms` : '') +
          (stats.missing > 0 ? `, ${stats.missing} CLIENTS MISSED IT` : ''),
      );
    }

    await target.profile?.stop();
    return summarize({
      server: target.name,
      protocol,
      clients,
      connectAllMs,
      rssBeforeKb,
      rssAfterKb,
      rssPerStreamKb: (rssAfterKb - rssBeforeKb) / clients,
      connections,
      perChange,
    });
  } finally {
    await lg.stop();
    await target.close();
  }
}
