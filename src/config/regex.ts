/**
 * RE2 patterns as Envoy checks them (safe_regex). In: a pattern. Out: whether RE2 accepts it and an
 * estimate of the size of the program Envoy's RE2 (C++) compiles it to; Envoy refuses a regex
 * over 100 instructions (runtime key re2.max_program_size.error_level), which would NACK the
 * whole route table.
 *
 * re2js compiles the same syntax, but a character class is one instruction there, while C++ RE2
 * matches UTF-8 bytes and spends about one instruction per range of the class. The estimate counts
 * re2js's instructions, each class as its number of ranges, plus the 2 C++ RE2 adds. Checked
 * against Envoy 1.40.0's own count (`envoy --mode validate`): exact for literals, `[a-z0-9-]`, `[^/]` and `.`; above it
 * (never below) for shorthands such as `\w`, so a refused pattern may still have fitted, but a
 * pattern accepted here never exceeds Envoy's limit.
 */
import { RE2JS } from 're2js';

export const RE2_MAX_PROGRAM_SIZE = 100;
/** Instructions C++ RE2 adds to re2js's count (measured: the same on every pattern tried). */
const CXX_OVERHEAD = 2;

/** What re2js keeps of a compiled program (not in its typings; read defensively). */
interface Re2jsInternals {
  readonly re2Input?: { readonly prog?: { readonly inst?: ReadonlyArray<{ readonly runes?: ArrayLike<number> }> } };
}

/** Compiles `pattern` (throws RE2's error for an invalid one) and estimates Envoy's program size. */
export function re2ProgramSize(pattern: string): number {
  const compiled = RE2JS.compile(pattern);
  const inst = (compiled as unknown as Re2jsInternals).re2Input?.prog?.inst;
  if (!inst) throw new Error('re2js no longer exposes its compiled program; update src/config/regex.ts');
  return inst.reduce((n, i) => n + Math.max(1, Math.floor((i.runes?.length ?? 0) / 2)), 0) + CXX_OVERHEAD;
}
