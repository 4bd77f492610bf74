/**
 * Numbers for the fan-out benchmark. In: per-client stamps of one change (ms since the shared
 * base) and the publish stamp. Out: delivery percentiles per change, and the median of each
 * figure over all changes (the figure the table prints: one slow change, e.g. a GC pause, does
 * not decide the result, and every change still shows in --verbose).
 */
import { TYPE_SHORT, isXdsTypeUrl } from '../../src/xds/resource-types.js';
import type { ChangeMessage, Protocol } from './ipc.js';

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export interface ChangeStats {
  readonly change: number;
  /** Delivery: publish -> the client holds every changed type. Over clients, ms. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Publish -> the last client had ACKed every changed type, ms. */
  readonly allAcked: number;
  /** Publish -> CDS arrived, p99 over clients (the floor reference measures CDS alone). */
  readonly cdsP99: number;
  /** Publish -> that type's new version arrived, per changed type (CDS, RDS, ...): p50 and p99 over clients. */
  readonly perType: Readonly<Record<string, { readonly p50: number; readonly p99: number }>>;
  /** How long publishing held the server's thread (ours: the synchronous fan-out in cache.set). */
  readonly publishBlockMs?: number;
  readonly missing: number;
  readonly responses: number;
  /** gRPC message bytes each client received for the change (mean over clients), to the end of the quiet time. */
  readonly bytesPerClient: number;
  /** CPU the server used for the change: from just before publish until the quiet time after it. */
  readonly serverCpuMs: number;
  /** CPU the load generator (all clients) used from arm to report. */
  readonly clientCpuMs: number;
}

export function changeStats(
  report: ChangeMessage,
  publishMs: number,
  cdsTypeUrl: string,
  serverCpuMs: number,
  bytesPerClient: number,
  publishBlockMs?: number,
): ChangeStats {
  const types = Object.values(report.received);
  const n = report.acked.length;
  const delivered: number[] = [];
  for (let i = 0; i < n; i++) {
    let last = -Infinity;
    let complete = true;
    for (const perClient of types) {
      const at = perClient[i];
      if (at === null || at === undefined) complete = false;
      else last = Math.max(last, at);
    }
    if (complete) delivered.push(last - publishMs);
  }
  delivered.sort((a, b) => a - b);
  const acked = report.acked.filter((a): a is number => a !== null).map((a) => a - publishMs);
  const since = (list: ReadonlyArray<number | null>): number[] =>
    list
      .filter((a): a is number => a !== null)
      .map((a) => a - publishMs)
      .sort((a, b) => a - b);
  const cds = since(report.received[cdsTypeUrl] ?? []);
  const perType: Record<string, { p50: number; p99: number }> = {};
  for (const [typeUrl, list] of Object.entries(report.received)) {
    const times = since(list);
    perType[isXdsTypeUrl(typeUrl) ? TYPE_SHORT[typeUrl] : typeUrl] = { p50: percentile(times, 50), p99: percentile(times, 99) };
  }
  return {
    change: report.change,
    p50: percentile(delivered, 50),
    p99: percentile(delivered, 99),
    max: delivered.length > 0 ? (delivered[delivered.length - 1] as number) : NaN,
    allAcked: report.missing === 0 && acked.length > 0 ? Math.max(...acked) : NaN,
    cdsP99: percentile(cds, 99),
    perType,
    ...(publishBlockMs !== undefined ? { publishBlockMs } : {}),
    missing: report.missing,
    responses: report.responses,
    bytesPerClient,
    serverCpuMs,
    clientCpuMs: report.cpuMs,
  };
}

export interface RunSummary {
  readonly server: string;
  readonly protocol: Protocol;
  readonly clients: number;
  readonly changes: number;
  /** Medians over changes. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly allAcked: number;
  readonly cdsP99: number;
  readonly responsesPerChange: number;
  readonly bytesPerClient: number;
  readonly serverCpuMs: number;
  readonly clientCpuMs: number;
  readonly publishBlockMs?: number;
  /** Time from the first connect until every client held and had ACKed the initial snapshot. */
  readonly connectAllMs: number;
  readonly rssBeforeKb: number;
  readonly rssAfterKb: number;
  readonly rssPerStreamKb: number;
  /** Established TCP connections from the load generators to the server's port, as the kernel counts them. */
  readonly connections: number;
  readonly perChange: readonly ChangeStats[];
}

export function summarize(
  base: Omit<
    RunSummary,
    'p50' | 'p99' | 'max' | 'allAcked' | 'cdsP99' | 'responsesPerChange' | 'bytesPerClient' | 'serverCpuMs' | 'clientCpuMs' | 'publishBlockMs' | 'changes'
  >,
): RunSummary {
  const per = base.perChange;
  const blocks = per.map((c) => c.publishBlockMs).filter((b): b is number => b !== undefined);
  return {
    ...base,
    changes: per.length,
    p50: median(per.map((c) => c.p50)),
    p99: median(per.map((c) => c.p99)),
    max: median(per.map((c) => c.max)),
    allAcked: median(per.map((c) => c.allAcked)),
    cdsP99: median(per.map((c) => c.cdsP99)),
    responsesPerChange: median(per.map((c) => c.responses)),
    bytesPerClient: median(per.map((c) => c.bytesPerClient)),
    serverCpuMs: median(per.map((c) => c.serverCpuMs)),
    clientCpuMs: median(per.map((c) => c.clientCpuMs)),
    ...(blocks.length > 0 ? { publishBlockMs: median(blocks) } : {}),
  };
}
