/**
 * The fan-out benchmark's tables: one row per server run, then ratio rows (ours over the peer,
 * or one client count over another), columns chosen per workload. In: RunSummaries and which
 * of them to divide. Out: aligned text.
 */
import type { RunSummary } from './stats.js';

export interface Column {
  readonly header: string;
  readonly value: (r: RunSummary) => number;
  readonly digits: number;
  /** Whether a ratio row divides this column (not for counts such as clients). */
  readonly ratio: boolean;
}

export interface Row {
  readonly label: string;
  readonly run: RunSummary;
}

/** A row that prints a.column / b.column for every ratio column. */
export interface RatioRow {
  readonly label: string;
  readonly a: RunSummary;
  readonly b: RunSummary;
}

export function fmt(n: number | undefined, digits = 0): string {
  return n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits);
}

/** a/b with two decimals; below 0.1 with two significant digits (Delta's bytes are a thousandth of SotW's). */
export function ratio(a: number, b: number): string {
  if (!(b > 0) || Number.isNaN(a)) return '-';
  const r = a / b;
  return `${r >= 0.1 || r === 0 ? r.toFixed(2) : r.toPrecision(2)}x`;
}

export function renderTable(first: string, columns: readonly Column[], rows: readonly Row[], ratios: readonly RatioRow[]): string {
  const header = [first, ...columns.map((c) => c.header)];
  const body = [
    ...rows.map((r) => [r.label, ...columns.map((c) => fmt(c.value(r.run), c.digits))]),
    ...ratios.map((r) => [r.label, ...columns.map((c) => (c.ratio ? ratio(c.value(r.a), c.value(r.b)) : ''))]),
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** Columns shared by the workloads, by the name the tables use. */
export const COLUMNS = {
  clients: { header: 'clients', value: (r) => r.clients, digits: 0, ratio: false },
  changes: { header: 'changes', value: (r) => r.changes, digits: 0, ratio: false },
  p50: { header: 'p50 ms', value: (r) => r.p50, digits: 1, ratio: true },
  p99: { header: 'p99 ms', value: (r) => r.p99, digits: 1, ratio: true },
  max: { header: 'max ms', value: (r) => r.max, digits: 1, ratio: true },
  allAcked: { header: 'all-ACKed ms', value: (r) => r.allAcked, digits: 1, ratio: true },
  cdsP99: { header: 'CDS p99 ms', value: (r) => r.cdsP99, digits: 1, ratio: true },
  responses: { header: 'resp/change', value: (r) => r.responsesPerChange, digits: 0, ratio: true },
  bytes: { header: 'bytes/client', value: (r) => r.bytesPerClient, digits: 0, ratio: true },
  cpu: { header: 'CPU ms/change', value: (r) => r.serverCpuMs, digits: 0, ratio: true },
  rss: { header: 'RSS/stream KB', value: (r) => r.rssPerStreamKb, digits: 1, ratio: true },
  connectAll: { header: 'connect-all ms', value: (r) => r.connectAllMs, digits: 0, ratio: true },
} as const satisfies Record<string, Column>;
