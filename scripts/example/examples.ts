/**
 * The examples `npm run example -- <name>` knows: one module per folder under examples/, each
 * with a title, its default data plane and a walkthrough run against a Stack.
 */
import type { DataPlaneKind, Stack } from './stack.js';
import { quickstart } from './quickstart.js';
import { seed000 } from './seed-000.js';
import { seed001 } from './seed-001.js';
import { seed002 } from './seed-002.js';
import { seed003 } from './seed-003.js';

export interface Example {
  readonly title: string;
  /** Its README (with the config beside it). */
  readonly readme: string;
  /** When the command line names none (default envoy). */
  readonly dataPlane?: DataPlaneKind;
  run(stack: Stack): Promise<void>;
}

export const EXAMPLES: Readonly<Record<string, Example>> = {
  quickstart,
  'seed-000': seed000,
  'seed-001': seed001,
  'seed-002': seed002,
  'seed-003': seed003,
};

/**
 * One walkthrough step as printed: a title, the command a user would type, what to expect, what
 * this run got, and optionally the data plane's counters behind it (`stats:`).
 */
export function step(stack: Stack, s: { title: string; command: string; expect: string; got: string; stats?: string }): void {
  const stats = s.stats === undefined ? '' : `\n  stats:  ${s.stats}`;
  stack.opts.print(`\n== ${s.title}\n  $ ${s.command.split('\n').join('\n    ')}\n  expect: ${s.expect}\n  got:    ${s.got}${stats}`);
}

/** The shell line that sends `n` GETs and counts the answering upstreams (no jq needed). */
export function curlTally(url: string, n: number): string {
  return `for i in $(seq ${n}); do curl -s ${url}; done | grep -o '"upstream":"[^"]*"' | sort | uniq -c`;
}
