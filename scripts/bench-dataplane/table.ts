/**
 * Figures of the data-plane benchmark. In: one Cell per measured load run (round, target,
 * protocol, concurrency). Out: one Row per (protocol, concurrency, target) holding medians over
 * rounds, latency added over the direct baseline, and the text table with the ours/Envoy ratios.
 *
 * Added latency is the median over rounds of the target's percentile minus the median of the
 * direct baseline's same percentile (same protocol, same concurrency). CPU per request is the
 * data plane process's user+system CPU over the run divided by the requests it completed: on two
 * shared cores it moves less than req/s does, so it is the steadier figure for the ratio.
 */
import { median } from '../bench/stats.js';
import type { TargetName } from './data-planes.js';
import { PROTOCOL_LABEL, type LoadResult, type Protocol } from './load.js';

export interface Cell {
  readonly round: number;
  readonly target: TargetName;
  readonly protocol: Protocol;
  readonly concurrency: number;
  readonly load: LoadResult;
  /** Data plane CPU per completed request, microseconds; undefined for direct. */
  readonly dpCpuUs: number | undefined;
  /** The upstream process's CPU per completed request, microseconds. */
  readonly upstreamCpuUs: number;
}

export interface Row {
  readonly protocol: Protocol;
  readonly concurrency: number;
  readonly target: TargetName;
  readonly rounds: number;
  readonly rps: number;
  readonly p50Us: number;
  readonly p99Us: number;
  /** Over direct; NaN for direct itself or when direct was not measured. */
  readonly addedP50Us: number;
  readonly addedP99Us: number;
  readonly dpCpuUs: number;
  readonly upstreamCpuUs: number;
  /** Failed requests, summed over rounds. */
  readonly errors: number;
}

export function summarize(cells: readonly Cell[]): Row[] {
  const keyOf = (c: { protocol: Protocol; concurrency: number; target: TargetName }): string => `${c.protocol}|${c.concurrency}|${c.target}`;
  const groups = new Map<string, Cell[]>();
  for (const c of cells) {
    const list = groups.get(keyOf(c)) ?? [];
    list.push(c);
    groups.set(keyOf(c), list);
  }
  const base = (list: Cell[]): Omit<Row, 'addedP50Us' | 'addedP99Us'> => {
    const first = list[0] as Cell;
    return {
      protocol: first.protocol,
      concurrency: first.concurrency,
      target: first.target,
      rounds: list.length,
      rps: median(list.map((c) => c.load.rps)),
      p50Us: median(list.map((c) => c.load.p50Us)),
      p99Us: median(list.map((c) => c.load.p99Us)),
      dpCpuUs: median(list.map((c) => c.dpCpuUs ?? NaN)),
      upstreamCpuUs: median(list.map((c) => c.upstreamCpuUs)),
      errors: list.reduce((n, c) => n + c.load.errors, 0),
    };
  };
  const rows: Row[] = [];
  for (const list of groups.values()) {
    const row = base(list);
    const direct = groups.get(keyOf({ ...row, target: 'direct' }));
    const d = direct && row.target !== 'direct' ? base(direct) : undefined;
    rows.push({ ...row, addedP50Us: d ? row.p50Us - d.p50Us : NaN, addedP99Us: d ? row.p99Us - d.p99Us : NaN });
  }
  return rows;
}

/** ours/Envoy for one (protocol, concurrency); NaN where either side is missing. */
export interface Ratio {
  readonly rps: number;
  readonly addedP50: number;
  readonly addedP99: number;
  readonly cpu: number;
}

export function ratio(rows: readonly Row[], protocol: Protocol, concurrency: number): Ratio | undefined {
  const find = (t: TargetName): Row | undefined => rows.find((r) => r.protocol === protocol && r.concurrency === concurrency && r.target === t);
  const ours = find('consul-xds');
  const envoy = find('envoy');
  if (!ours || !envoy) return undefined;
  // Added latency below zero is noise in the baseline's percentile: no ratio of it.
  const added = (a: number, b: number): number => (a > 0 && b > 0 ? a / b : NaN);
  return {
    rps: ours.rps / envoy.rps,
    addedP50: added(ours.addedP50Us, envoy.addedP50Us),
    addedP99: added(ours.addedP99Us, envoy.addedP99Us),
    cpu: ours.dpCpuUs / envoy.dpCpuUs,
  };
}

function ms(us: number): string {
  if (!Number.isFinite(us)) return '-';
  const v = us / 1000;
  return Math.abs(v) < 10 ? v.toFixed(3) : v.toFixed(1);
}

function num(v: number, digits = 0): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

function times(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(2)}x` : '-';
}

function loadLabel(protocol: Protocol, concurrency: number): string {
  return protocol === 'http1' ? `${concurrency} conn` : `${concurrency} call${concurrency === 1 ? '' : 's'}/1 conn`;
}

const HEAD = ['protocol', 'load', 'data plane', 'req/s', 'p50 ms', 'p99 ms', '+p50 ms', '+p99 ms', 'CPU us/req', 'errors'];
const RIGHT = new Set([3, 4, 5, 6, 7, 8, 9]);

/** The table: rows in protocol, load, target order, each block closed by its ours/Envoy line. */
export function formatTable(rows: readonly Row[], protocols: readonly Protocol[], loads: readonly number[]): string {
  const lines: string[][] = [];
  const order: readonly TargetName[] = ['direct', 'envoy', 'consul-xds'];
  for (const protocol of protocols) {
    for (const concurrency of loads) {
      const block = order
        .map((t) => rows.find((r) => r.protocol === protocol && r.concurrency === concurrency && r.target === t))
        .filter((r): r is Row => r !== undefined);
      if (block.length === 0) continue;
      block.forEach((r, i) => {
        lines.push([
          i === 0 ? PROTOCOL_LABEL[protocol] : '',
          i === 0 ? loadLabel(protocol, concurrency) : '',
          r.target,
          num(r.rps),
          ms(r.p50Us),
          ms(r.p99Us),
          ms(r.addedP50Us),
          ms(r.addedP99Us),
          num(r.dpCpuUs, 1),
          String(r.errors),
        ]);
      });
      const q = ratio(rows, protocol, concurrency);
      if (q) lines.push(['', '', 'ours/Envoy', times(q.rps), '', '', times(q.addedP50), times(q.addedP99), times(q.cpu), '']);
    }
  }
  const widths = HEAD.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const fmt = (cols: readonly string[]): string =>
    cols
      .map((c, i) => (RIGHT.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(HEAD), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt)].join('\n');
}
