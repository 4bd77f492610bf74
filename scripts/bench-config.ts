/**
 * Config refusal benchmark: how long parseConfig takes to refuse (or accept) configs built to be
 * expensive, every one of them under the size cap unless its name says otherwise: 40,000 unknown
 * keys, in one section or spread over several, 40,000 duplicate keys, 40,000 bad values, a
 * 500 KB value, 100,000 routes sharing one prefix without weights, deep nesting, many aliases,
 * and valid large configs. Prints the median and max time per case over several runs, the
 * outcome and the length of the error message (it stays bounded). CPU time is printed too: on a
 * shared machine the wall time includes waiting for a core.
 *
 *   npm run build && npm run bench:config -- [--runs 7] [--case NAME] [--baseline DIR]
 *
 * `--baseline DIR` times another build's parseConfig in the same run, side by side (e.g. DIR =
 * a build of main: /work/main/dist). Each (implementation, case) runs in its own worker thread,
 * so a case that takes too long (quadratic code, `--timeout-s`) is stopped and shown as such.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { MINIMAL_CONFIG } from '../test/support/config-text.js';
import { median } from './bench/stats.js';

const SELF = fileURLToPath(import.meta.url);
const OURS = path.resolve(path.dirname(SELF), '..');

/** Short distinct names (base 36) keep 40,000 keys under the 512 KiB cap. */
const id = (i: number): string => i.toString(36).padStart(4, '0');
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

const HEAD = MINIMAL_CONFIG.replace('web: {}', 'web:\n      lb-policy: random');

interface Case {
  readonly name: string;
  readonly text: () => string;
}

const CASES: readonly Case[] = [
  { name: 'unknown keys: 40,000 in one section', text: () => HEAD + range(40_000).map((i) => `  k${id(i)}: 1\n`).join('') },
  {
    name: 'unknown keys: 40,000 over 4 sections',
    text: () => {
      const keys = (indent: string, from: number) => range(10_000).map((i) => `${indent}k${id(from + i)}: 1\n`).join('');
      return `listener:\n  listen:\n    address: "127.0.0.1"\n    port: 8000\n${keys('    ', 0)}route:\n  domain: ["example.com"]\n  cluster:\n    web:\n      prefix: ["/"]\n${keys('  ', 10_000)}cluster:\n  loadbalancer:\n    web:\n${keys('      ', 20_000)}${keys('', 30_000)}`;
    },
  },
  { name: 'duplicate keys: one key 40,000 times', text: () => HEAD + '  k: 1\n'.repeat(40_000) },
  { name: 'duplicate keys: 20,000 pairs', text: () => HEAD + range(20_000).map((i) => `    k${id(i)}: 1\n    k${id(i)}: 2\n`).join('') },
  {
    name: 'bad values: 40,000 bad statuses',
    text: () => `${HEAD}      health-check:\n        value: /h\n        timeout: 1\n        interval: 1\n        healthy: 1\n        unhealthy: 1\n        expected: [${range(40_000).map(() => '99').join(', ')}]\n`,
  },
  { name: 'bad value: one of 500 KB', text: () => HEAD.replace('lb-policy: random', `lb-policy: ${'x'.repeat(500_000)}`) },
  { name: 'unknown key: one of 500 KB', text: () => `${HEAD}      ${'k'.repeat(500_000)}: 1\n` },
  {
    name: 'routes: 20,000 share "/" without weights',
    text: () => HEAD.replace('    web:\n      prefix: ["/"]\n', range(20_000).map((i) => `    c${id(i)}: {prefix: [/]}\n`).join('')),
  },
  {
    name: 'vhosts: 4,000 listeners x 4,000 hosts "*"',
    text: () =>
      HEAD.replace('listener:\n', `listener:\n${range(4_000).map((i) => `  l${id(i)}: {address: 127.0.0.1, port: ${i + 1}}\n`).join('')}`) +
      `virtual-hosts:\n${range(4_000).map((i) => `  v${id(i)}: {domain: ["*"], cluster: {web: {prefix: [/]}}}\n`).join('')}`,
  },
  { name: 'nesting: [[[...]]] 250,000 deep', text: () => `${HEAD}      x: ${'['.repeat(250_000)}${']'.repeat(250_000)}\n` },
  { name: 'nesting: - - - 200,000 deep', text: () => `${HEAD}      x:\n${'- '.repeat(200_000)}1\n` },
  {
    name: 'aliases: 12,000 anchors, 12,000 aliases',
    text: () => HEAD + range(12_000).map((i) => `    a${id(i)}: &${id(i)} 1\n    b${id(i)}: *${id(i)}\n`).join(''),
  },
  {
    name: 'aliases: 500 anchors, 500 aliases',
    text: () => HEAD + range(500).map((i) => `    a${id(i)}: &${id(i)} 1\n    b${id(i)}: *${id(i)}\n`).join(''),
  },
  {
    name: 'valid: 8,000 clusters and routes',
    text: () =>
      HEAD.replace('    web:\n      prefix: ["/"]\n', range(8_000).map((i) => `    c${id(i)}: {prefix: [/${id(i)}]}\n`).join('')) +
      range(8_000).map((i) => `    c${id(i)}: {lb-policy: random}\n`).join(''),
  },
  {
    name: 'valid: 40,000 domains',
    text: () => HEAD.replace('domain: ["example.com"]', `domain: [${range(40_000).map((i) => `h${id(i)}.io`).join(', ')}]`),
  },
  { name: 'over the cap: 600 KB', text: () => HEAD + range(50_000).map((i) => `    k${id(i)}: 1\n`).join('') },
];

interface Result {
  /** Wall time per run. */
  readonly ms: number[];
  /** CPU time per run (process-wide, so GC threads count): on a shared machine, the cost without the wait. */
  readonly cpuMs: number[];
  readonly bytes: number;
  readonly outcome: string;
  readonly messageChars: number;
}

type ParseConfig = (text: string, source: string) => unknown;

/** Worker: times `runs` parses of one case with the given build's parseConfig. */
async function measure(dist: string, caseName: string, runs: number): Promise<Result> {
  const mod = (await import(pathToFileURL(path.join(dist, 'src/config/parse.js')).href)) as { parseConfig: ParseConfig };
  const c = CASES.find((x) => x.name === caseName);
  if (!c) throw new Error(`no case ${caseName}`);
  const text = c.text();
  const ms: number[] = [];
  const cpuMs: number[] = [];
  let outcome = '';
  let messageChars = 0;
  // One warm-up run: the figure is the steady cost in a running server, not module compilation.
  for (let r = 0; r <= runs; r++) {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    try {
      mod.parseConfig(text, 'bench.yaml');
      outcome = 'accepted';
    } catch (err) {
      const e = err as { code?: string; message: string; total?: number; issues?: unknown[] };
      outcome = `${e.code ?? 'error'}${e.issues ? ` (${e.total ?? e.issues.length} problems)` : ''}`;
      messageChars = e.message.length;
    }
    const cpu = process.cpuUsage(cpu0);
    if (r > 0) {
      ms.push(performance.now() - t0);
      cpuMs.push((cpu.user + cpu.system) / 1000);
    }
    parentPort?.postMessage({ progress: ms.length });
  }
  return { ms, cpuMs, bytes: Buffer.byteLength(text), outcome, messageChars };
}

function runCase(dist: string, caseName: string, runs: number, timeoutMs: number): Promise<Result | 'timeout'> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(SELF, { workerData: { dist, caseName, runs } });
    // The budget restarts with each finished run: a slow but finishing case still reports.
    let timer = setTimeout(() => void worker.terminate().then(() => resolve('timeout')), timeoutMs);
    worker.on('message', (m: { progress?: number; result?: Result }) => {
      if (m.result) {
        clearTimeout(timer);
        resolve(m.result);
        void worker.terminate();
      } else {
        clearTimeout(timer);
        timer = setTimeout(() => void worker.terminate().then(() => resolve('timeout')), timeoutMs);
      }
    });
    worker.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

function cell(r: Result | 'timeout', timeoutMs: number): string {
  if (r === 'timeout') return `> ${fmt(timeoutMs)} (stopped)`.padEnd(33);
  return `${fmt(median(r.ms)).padStart(9)} ${fmt(Math.max(...r.ms)).padStart(9)} ${fmt(median(r.cpuMs)).padStart(9)}    `;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '7' },
      case: { type: 'string' },
      baseline: { type: 'string' },
      'timeout-s': { type: 'string', default: '30' },
    },
  });
  const runs = Number(values.runs);
  const timeoutMs = Number(values['timeout-s']) * 1000;
  const cases = CASES.filter((c) => !values.case || c.name.includes(values.case));
  const builds: Array<[string, string]> = [['ours', OURS], ...(values.baseline ? [['baseline', path.resolve(values.baseline)] as [string, string]] : [])];
  process.stdout.write(
    `parseConfig, ${runs} runs per case after one warm-up: median and max wall time, median CPU time${values.baseline ? `; baseline: ${values.baseline}` : ''}; load average ${os.loadavg()[0]?.toFixed(1)} on ${os.cpus().length} CPUs\n\n`,
  );
  const head = `${'case'.padEnd(42)}${'KB'.padStart(6)}  ${builds.map(() => `${'median'.padStart(9)} ${'max'.padStart(9)} ${'cpu'.padStart(9)}    `).join('')}outcome (ours), message chars`;
  process.stdout.write(`${''.padEnd(50)}${builds.map(([n]) => `${n.padStart(9)}`.padEnd(33)).join('')}\n${head}\n${'-'.repeat(head.length + 10)}\n`);
  for (const c of cases) {
    const results: Array<Result | 'timeout'> = [];
    for (const [, dist] of builds) results.push(await runCase(dist, c.name, runs, timeoutMs));
    const ours = results[0];
    const info = ours && ours !== 'timeout' ? ours : undefined;
    const base = results[1];
    const baseChars = base && base !== 'timeout' ? ` (baseline ${base.messageChars})` : '';
    process.stdout.write(
      `${c.name.padEnd(42)}${((info?.bytes ?? 0) / 1024).toFixed(0).padStart(6)}  ${results.map((r) => cell(r, timeoutMs)).join('')}${info ? `${info.outcome}, ${info.messageChars}${baseChars}` : ''}\n`,
    );
  }
}

if (isMainThread) {
  await main();
} else {
  const { dist, caseName, runs } = workerData as { dist: string; caseName: string; runs: number };
  parentPort?.postMessage({ result: await measure(dist, caseName, runs) });
}
