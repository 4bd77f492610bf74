/**
 * Durations in the config. In: a number of seconds (fractions allowed, the seed writes
 * `timeout: 3`) or a string with a unit ("250ms", "1.5s", "2m", "1h"). Out: a protobuf Duration
 * `{seconds, nanos}`, the shape protobufjs `fromObject` expects for google.protobuf.Duration.
 */

export interface Duration {
  readonly seconds: number;
  readonly nanos: number;
}

const UNIT_SECONDS: Readonly<Record<string, number>> = { ms: 1e-3, s: 1, m: 60, h: 3600 };
const DURATION_TEXT = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$/;

/** Upper bound we accept: a year. Larger values are typos, and stay far below float precision loss. */
const MAX_SECONDS = 366 * 24 * 3600;

export const DURATION_HINT = 'expected a number (seconds) or a duration string like "250ms" or "1.5s"';

/** Parse a config duration; undefined when the value is not one (negative, NaN, unknown unit, too large). */
export function parseDuration(value: unknown): Duration | undefined {
  let seconds: number;
  if (typeof value === 'number') {
    seconds = value;
  } else if (typeof value === 'string') {
    const m = DURATION_TEXT.exec(value);
    if (!m) return undefined;
    seconds = Number(m[1]) * (UNIT_SECONDS[m[2] ?? 's'] ?? 1);
  } else {
    return undefined;
  }
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_SECONDS) return undefined;
  // Round to whole nanoseconds once, so 0.1 s becomes exactly 100,000,000 ns.
  const totalNanos = Math.round(seconds * 1e9);
  const whole = Math.floor(totalNanos / 1e9);
  return { seconds: whole, nanos: totalNanos - whole * 1e9 };
}

export function durationIsZero(d: Duration): boolean {
  return d.seconds === 0 && d.nanos === 0;
}

export function durationEquals(a: Duration, b: Duration): boolean {
  return a.seconds === b.seconds && a.nanos === b.nanos;
}

/** Human form for messages: 1.5s, 250ms. */
export function formatDuration(d: Duration): string {
  const s = d.seconds + d.nanos / 1e9;
  return s < 1 && s > 0 ? `${Math.round(s * 1e6) / 1e3}ms` : `${s}s`;
}
