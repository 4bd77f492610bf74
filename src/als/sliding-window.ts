/**
 * Request counts, status classes and a latency histogram over the last `windowSeconds` seconds,
 * plus lifetime totals, for one aggregate key (a route or an upstream cluster). In: one call per
 * access-log entry. Out: a summary (requests, status classes, p50/p90/p99) on demand.
 *
 * Memory is fixed at construction: a ring of one slot per second, each slot a row of counters in
 * one Uint32Array. A slot is zeroed lazily when a new second first writes to it, so an idle key
 * costs no work, and reading sums only the slots stamped within the window.
 */
import { BIN_COUNT, binOf, percentileOf } from './latency-histogram.js';

/** Status classes: index 0 = no HTTP status (TCP, or reset before a response), 1..5 = 1xx..5xx. */
export const STATUS_CLASSES = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

/** Index into STATUS_CLASSES for an HTTP status (0 or out of range -> 'none'). */
export function statusClassIndex(status: number): number {
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? c : 0;
}

// Slot row layout: [requests, class counts (6), latency bins (BIN_COUNT)].
const CLASS_OFFSET = 1;
const BIN_OFFSET = CLASS_OFFSET + STATUS_CLASSES.length;
const STRIDE = BIN_OFFSET + BIN_COUNT;

/** Bytes one key holds for a given window length; used to state the memory bound. */
export function windowBytes(windowSeconds: number): number {
  return windowSeconds * (STRIDE * 4 + 8) + (1 + STATUS_CLASSES.length) * 8;
}

export interface WindowSummary {
  /** Lifetime counts since the sink started (monotonic: safe for Prometheus counters). */
  readonly total: { readonly requests: number; readonly classes: Readonly<Record<StatusClass, number>> };
  /** Counts and latency percentiles over the sliding window. */
  readonly window: {
    readonly seconds: number;
    readonly requests: number;
    readonly rps: number;
    readonly classes: Readonly<Record<StatusClass, number>>;
    readonly p50_ms?: number;
    readonly p90_ms?: number;
    readonly p99_ms?: number;
  };
}

/** Raw window counts: requests, per status class (STATUS_CLASSES order) and per latency bin. */
export interface WindowCounts {
  readonly seconds: number;
  readonly requests: number;
  readonly classes: Float64Array;
  readonly bins: Float64Array;
}

export class SlidingWindow {
  private readonly seconds: number;
  private readonly rows: Uint32Array;
  /** Epoch second each slot currently holds; -1 = never written. */
  private readonly stamps: Float64Array;
  /** Lifetime: [requests, class counts...]. Float64 so counts never wrap. */
  private readonly totals: Float64Array;

  constructor(windowSeconds: number) {
    this.seconds = windowSeconds;
    this.rows = new Uint32Array(windowSeconds * STRIDE);
    this.stamps = new Float64Array(windowSeconds).fill(-1);
    this.totals = new Float64Array(1 + STATUS_CLASSES.length);
  }

  /** Count one request finished in epoch second `nowSec` with `status` after `durationMs`. */
  record(nowSec: number, status: number, durationMs: number): void {
    const slot = nowSec % this.seconds;
    const base = slot * STRIDE;
    const rows = this.rows;
    if (this.stamps[slot] !== nowSec) {
      rows.fill(0, base, base + STRIDE);
      this.stamps[slot] = nowSec;
    }
    const cls = statusClassIndex(status);
    rows[base]! += 1;
    rows[base + CLASS_OFFSET + cls]! += 1;
    rows[base + BIN_OFFSET + binOf(durationMs)]! += 1;
    this.totals[0]! += 1;
    this.totals[1 + cls]! += 1;
  }

  /**
   * Raw counts over the last `seconds` seconds (at most the window): what a fleet view sums across
   * sidecars, since latency bins add up where percentiles do not.
   */
  counts(nowSec: number, seconds: number = this.seconds): WindowCounts {
    const span = Math.min(Math.max(1, Math.floor(seconds)), this.seconds);
    const bins = new Float64Array(BIN_COUNT);
    const classes = new Float64Array(STATUS_CLASSES.length);
    let requests = 0;
    for (let slot = 0; slot < this.seconds; slot++) {
      const stamp = this.stamps[slot]!;
      if (stamp < 0 || stamp <= nowSec - span || stamp > nowSec) continue;
      const base = slot * STRIDE;
      requests += this.rows[base]!;
      for (let c = 0; c < classes.length; c++) classes[c]! += this.rows[base + CLASS_OFFSET + c]!;
      for (let b = 0; b < BIN_COUNT; b++) bins[b]! += this.rows[base + BIN_OFFSET + b]!;
    }
    return { seconds: span, requests, classes, bins };
  }

  summary(nowSec: number): WindowSummary {
    const { requests, classes, bins } = this.counts(nowSec);
    const round = (v: number | undefined) => (v === undefined ? undefined : Math.round(v * 1000) / 1000);
    return {
      total: { requests: this.totals[0]!, classes: classRecord((i) => this.totals[1 + i]!) },
      window: {
        seconds: this.seconds,
        requests,
        rps: Math.round((requests / this.seconds) * 100) / 100,
        classes: classRecord((i) => classes[i]!),
        p50_ms: round(percentileOf(bins, requests, 0.5)),
        p90_ms: round(percentileOf(bins, requests, 0.9)),
        p99_ms: round(percentileOf(bins, requests, 0.99)),
      },
    };
  }
}

function classRecord(get: (i: number) => number): Record<StatusClass, number> {
  const out = {} as Record<StatusClass, number>;
  STATUS_CLASSES.forEach((name, i) => {
    out[name] = get(i);
  });
  return out;
}
