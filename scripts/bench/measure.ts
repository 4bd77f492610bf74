/**
 * One benchmark run against one server (ours or a peer): the same steps for every server, so the
 * figures printed side by side were measured the same way.
 *
 * In: a Target (how to publish snapshot i to that server, read its memory, collect its garbage)
 * and the versions each snapshot carries. Out: a RunSummary.
 *
 * Steps: RSS with the initial snapshot set and no client; N clients connect (a fresh load
 * generator process) and ACK the initial snapshot; the kernel must show N established connections
 * on the server's port; RSS again; then W warm-up changes and C measured ones, each armed in the
 * load generator before it is published, measured from the publish stamp to receipt (and ACK) at
 * every client. Warm-up changes run exactly like measured ones but are not counted: a long-running
 * server has its hot paths compiled (V8's JIT, Go's lazily built state); the first changes after
 * a start measure the compiler.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { TypeUrl } from '../../src/xds/resource-types.js';
import { LoadGenerator } from './load-generator-handle.js';
import { cpuMs, establishedOnPort, rssKb } from './proc.js';
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

export interface RunOptions {
  readonly baseNs: bigint;
  readonly clients: number;
  /** Versions per type URL of snapshot 0 (initial) .. W + C. */
  readonly versions: ReadonlyArray<Readonly<Record<string, string>>>;
  /** The first `warmup` changes are not counted. */
  readonly warmup: number;
  readonly connectConcurrency: number;
  /** Quiet time after connecting and between changes, so one change's tail does not overlap the next. */
  readonly settleMs: number;
  /** A change not delivered to every client by then is reported with its missing clients. */
  readonly changeTimeoutMs: number;
  readonly log: (line: string) => void;
}

function msSince(baseNs: bigint, ns: bigint): number {
  return Number(ns - baseNs) / 1e6;
}

export async function runTarget(target: Target, opts: RunOptions): Promise<RunSummary> {
  const { baseNs, clients, versions, log } = opts;
  await target.gc();
  const rssBeforeKb = rssKb(target.pid);

  const lg = new LoadGenerator(baseNs);
  try {
    const connectStart = msSince(baseNs, process.hrtime.bigint());
    log(`${target.name}: connecting ${clients} clients to 127.0.0.1:${target.port}`);
    const ready = await lg.start(target.port, clients, opts.connectConcurrency);
    const connectAllMs = ready.readyAtMs - connectStart;
    const initial = versions[0] ?? {};
    for (const [typeUrl, version] of Object.entries(initial)) {
      if (ready.versions[typeUrl] !== version) {
        throw new Error(`${target.name}: clients hold ${typeUrl} version ${ready.versions[typeUrl]}, expected ${version}`);
      }
    }
    const connections = establishedOnPort(target.port);
    if (connections !== clients) {
      throw new Error(`${target.name}: the kernel shows ${connections} established connections on port ${target.port}, expected one per client (${clients})`);
    }
    log(`${target.name}: ${clients} clients ready in ${connectAllMs.toFixed(0)} ms, ${connections} connections`);

    await sleep(opts.settleMs);
    await target.gc();
    const rssAfterKb = rssKb(target.pid);

    const perChange: ChangeStats[] = [];
    for (let i = 1; i < versions.length; i++) {
      const prev = versions[i - 1] ?? {};
      const next = versions[i] ?? {};
      const expect = Object.fromEntries(Object.entries(next).filter(([t, v]) => prev[t] !== v));
      if (i === opts.warmup + 1) await target.profile?.start();
      await target.prepare(i);
      await lg.arm(i, expect, opts.changeTimeoutMs);
      const cpuBefore = cpuMs(target.pid);
      const { publishNs, blockMs } = await target.publish();
      const report = await lg.change();
      // The server is done with the change (ACKs included) by the end of the quiet time.
      await sleep(opts.settleMs);
      const serverCpu = cpuMs(target.pid) - cpuBefore;
      const stats = changeStats(report, msSince(baseNs, publishNs), TypeUrl.Cluster, serverCpu, blockMs);
      const counted = i > opts.warmup;
      if (counted) perChange.push(stats);
      log(
        `${target.name}: ${counted ? 'change' : 'warm-up change'} ${i}: p50 ${stats.p50.toFixed(1)} p99 ${stats.p99.toFixed(1)} max ${stats.max.toFixed(1)} ` +
          `all-acked ${stats.allAcked.toFixed(1)} ms ` +
          `(${Object.entries(stats.perType)
            .map(([t, v]) => `${t} p50 ${v.p50.toFixed(0)} p99 ${v.p99.toFixed(0)}`)
            .join(', ')}), ` +
          `${stats.responses} responses, ` +
          `CPU server ${serverCpu.toFixed(0)} ms clients ${report.cpuMs.toFixed(0)} ms` +
          (blockMs !== undefined ? `, publish blocked ${blockMs.toFixed(1)} ms` : '') +
          (stats.missing > 0 ? `, ${stats.missing} CLIENTS MISSED IT` : ''),
      );
    }

    await target.profile?.stop();
    return summarize({
      server: target.name,
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
