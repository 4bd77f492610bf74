/**
 * Fixed-size log-scale latency bins shared by every sliding-window aggregate. In: a duration in
 * milliseconds. Out: a bin index, and back from bin counts to a percentile estimate.
 *
 * Why fixed bins and not a t-digest or a sorted sample: recording is one Math.log2 and one array
 * increment (the ALS hot path runs this for every entry), the memory per histogram is a constant
 * BIN_COUNT counters no matter how much traffic arrives, and histograms of different seconds add
 * up bin by bin, which is what a sliding window needs.
 *
 * Resolution: 4 bins per power of two from 0.1 ms, so each bin spans a factor of 2^(1/4) = 1.19
 * and the reported value (the bin's geometric middle) is within about +-9 % of any sample in it.
 * The top bin collects everything from 0.1 ms * 2^20 (about 105 s) upwards.
 */

/** Lower edge of bin 1; bin 0 holds everything at or below it (sub-0.1 ms responses). */
export const MIN_MS = 0.1;
export const BINS_PER_OCTAVE = 4;
const OCTAVES = 20;
export const BIN_COUNT = 1 + OCTAVES * BINS_PER_OCTAVE + 1;

/** The bin a duration falls into. Non-finite or negative durations count as the lowest bin. */
export function binOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  const i = 1 + Math.floor(Math.log2(ms / MIN_MS) * BINS_PER_OCTAVE);
  return i < BIN_COUNT ? i : BIN_COUNT - 1;
}

/** The value a bin stands for when reported: its geometric middle (bin 0 reports MIN_MS). */
export function binValueMs(bin: number): number {
  if (bin <= 0) return MIN_MS;
  return MIN_MS * 2 ** ((bin - 0.5) / BINS_PER_OCTAVE);
}

/**
 * Percentile (0 < q <= 1) from summed bin counts: the value of the bin holding the
 * ceil(q * total)-th sample (nearest-rank). Undefined when there are no samples.
 */
export function percentileOf(bins: ArrayLike<number>, total: number, q: number): number | undefined {
  if (total <= 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < bins.length; i++) {
    seen += bins[i] ?? 0;
    if (seen >= rank) return binValueMs(i);
  }
  return binValueMs(bins.length - 1);
}
