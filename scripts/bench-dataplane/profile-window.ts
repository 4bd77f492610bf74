/**
 * Cuts a V8 CPU profile down to a time window, so the summary covers only the measured load and
 * not start-up (module loading, protobuf code generation, the first xDS exchange) or warm-up.
 * In: a .cpuprofile and a window in CLOCK_MONOTONIC microseconds (what V8's profile timestamps
 * and process.hrtime use on Linux). Out: a new .cpuprofile beside it (`<name>.window.cpuprofile`)
 * holding the samples inside the window, readable by any profile tool (Chrome DevTools too).
 */
import { readFileSync, writeFileSync } from 'node:fs';

interface CpuProfile {
  readonly nodes: readonly unknown[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Now on the clock the profile's timestamps use, in microseconds. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Writes the samples taken in [fromUs, toUs] to a new file and returns its path. */
export function cutProfile(file: string, fromUs: number, toUs: number): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  let t = p.startTime;
  let last = fromUs;
  p.samples.forEach((id, i) => {
    t += p.timeDeltas[i] ?? 0;
    if (t < fromUs || t > toUs) return;
    samples.push(id);
    timeDeltas.push(t - last);
    last = t;
  });
  if (samples.length === 0) throw new Error(`${file}: no samples between ${fromUs} and ${toUs} us (profile spans ${p.startTime}..${p.endTime})`);
  const out = `${file.replace(/\.cpuprofile$/, '')}.window.cpuprofile`;
  writeFileSync(out, JSON.stringify({ ...p, startTime: fromUs, endTime: last, samples, timeDeltas }));
  return out;
}
