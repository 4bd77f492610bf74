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
 *   npm run build && npm run bench:config -- --serve [--runs 5] [--case NAME]
 *
 * `--baseline DIR` times another build's parseConfig in the same run, side by side (e.g. DIR =
 * a build of main: /work/main/dist). Each (implementation, case) runs in its own worker thread,
 * so a case that takes too long (quadratic code, `--timeout-s`) is stopped and shown as such.
 *
 * `--serve` measures what a load balancer sees instead: the real app (serve(), file mode, in a
 * child process) is sent a few of these configs, while another process polls its /health every
 * 10 ms; per case it prints the max and p99 /health latency and the time from the write to the
 * refusal showing in /status, with parsing in the worker thread (serve's default) and in-process
 * (the old way), side by side.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { serve } from '../src/app.js';
import { createLogger } from '../src/log.js';
import { MINIMAL_CONFIG } from '../test/support/config-text.js';
import { EXPENSIVE_REFUSALS, HEAD, keyId as id, pollHealth, range } from '../test/support/config-stall.js';
import { makeTempDir } from '../test/support/tmp.js';
import { median, percentile } from './bench/stats.js';

const SELF = fileURLToPath(import.meta.url);
const OURS = path.resolve(path.dirname(SELF), '..');

interface Case {
  readonly name: string;
  readonly text: () => string;
}

const CASES: readonly Case[] = [
  ...Object.entries(EXPENSIVE_REFUSALS).map(([name, text]) => ({ name, text })),
  {
    name: 'unknown keys: 40,000 over 4 sections',
    text: () => {
      const keys = (indent: string, from: number) =>
        range(10_000)
          .map((i) => `${indent}k${id(from + i)}: 1\n`)
          .join('');
      return `listener:\n  listen:\n    address: "127.0.0.1"\n    port: 8000\n${keys('    ', 0)}route:\n  domain: ["example.com"]\n  cluster:\n    web:\n      prefix: ["/"]\n${keys('  ', 10_000)}cluster:\n  loadbalancer:\n    web:\n${keys('      ', 20_000)}${keys('', 30_000)}`;
    },
  },
  {
    name: 'duplicate keys: 20,000 pairs',
    text: () =>
      HEAD +
      range(20_000)
        .map((i) => `    k${id(i)}: 1\n    k${id(i)}: 2\n`)
        .join(''),
  },
  {
    name: 'bad values: 40,000 bad statuses',
    text: () =>
      `${HEAD}      health-check:\n        value: /h\n        timeout: 1\n        interval: 1\n        healthy: 1\n        unhealthy: 1\n        expected: [${range(
        40_000,
      )
        .map(() => '99')
        .join(', ')}]\n`,
  },
  { name: 'bad value: one of 500 KB', text: () => HEAD.replace('lb-policy: random', `lb-policy: ${'x'.repeat(500_000)}`) },
  { name: 'unknown key: one of 500 KB', text: () => `${HEAD}      ${'k'.repeat(500_000)}: 1\n` },
  {
    name: 'vhosts: 4,000 listeners x 4,000 hosts "*"',
    text: () =>
      HEAD.replace(
        'listener:\n',
        `listener:\n${range(4_000)
          .map((i) => `  l${id(i)}: {address: 127.0.0.1, port: ${i + 1}}\n`)
          .join('')}`,
      ) +
      `virtual-hosts:\n${range(4_000)
        .map((i) => `  v${id(i)}: {domain: ["*"], cluster: {web: {prefix: [/]}}}\n`)
        .join('')}`,
  },
  { name: 'nesting: [[[...]]] 250,000 deep', text: () => `${HEAD}      x: ${'['.repeat(250_000)}${']'.repeat(250_000)}\n` },
  { name: 'nesting: - - - 200,000 deep', text: () => `${HEAD}      x:\n${'- '.repeat(200_000)}1\n` },
  {
    name: 'aliases: 12,000 anchors, 12,000 aliases',
    text: () =>
      HEAD +
      range(12_000)
        .map((i) => `    a${id(i)}: &${id(i)} 1\n    b${id(i)}: *${id(i)}\n`)
        .join(''),
  },
  {
    name: 'aliases: 500 anchors, 500 aliases',
    text: () =>
      HEAD +
      range(500)
        .map((i) => `    a${id(i)}: &${id(i)} 1\n    b${id(i)}: *${id(i)}\n`)
        .join(''),
  },
  {
    name: 'valid: 8,000 clusters and routes',
    text: () =>
      HEAD.replace(
        '    web:\n      prefix: ["/"]\n',
        range(8_000)
          .map((i) => `    c${id(i)}: {prefix: [/${id(i)}]}\n`)
          .join(''),
      ) +
      range(8_000)
        .map((i) => `    c${id(i)}: {lb-policy: random}\n`)
        .join(''),
  },
  {
    name: 'valid: 40,000 domains',
    text: () =>
      HEAD.replace(
        'domain: ["example.com"]',
        `domain: [${range(40_000)
          .map((i) => `h${id(i)}.io`)
          .join(', ')}]`,
      ),
  },
  {
    name: 'over the cap: 600 KB',
    text: () =>
      HEAD +
      range(50_000)
        .map((i) => `    k${id(i)}: 1\n`)
        .join(''),
  },
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

/** `--serve`: the cases of the serve table (the costliest refusals, and 40,000 bad values). */
const SERVE_CASES = [...Object.keys(EXPENSIVE_REFUSALS), 'bad values: 40,000 bad statuses'];
/** A good config, different per run (its listener port), so each run's hostile text is parsed anew. */
const goodConfig = (run: number): string => MINIMAL_CONFIG.replace('port: 8000', `port: ${8000 + run}`);

interface ServeRun {
  readonly healthMaxMs: number;
  readonly healthP99Ms: number;
  readonly polls: number;
  /** /health requests that got no answer. */
  readonly failed: number;
  /** Write of the hostile text -> its refusal in /status. */
  readonly refusalMs: number;
}

/** The app under test, in its own process (so its stalls show as the latency a load balancer sees). */
async function startServeChild(file: string, inProcess: boolean): Promise<{ child: ChildProcess; admin: string }> {
  const child = spawn(process.execPath, [SELF, '--serve-child', file, ...(inProcess ? ['--in-process'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout as NodeJS.ReadableStream }), 'line')) as [string];
  return { child, admin: `http://127.0.0.1:${(JSON.parse(line) as { adminPort: number }).adminPort}` };
}

async function serveChild(file: string, inProcess: boolean): Promise<void> {
  const app = await serve({
    configFile: file,
    xds: { host: '127.0.0.1', port: 0 },
    admin: { port: 0 },
    als: false,
    logger: createLogger({ level: 'silent' }),
    configParsing: { inProcess },
  });
  process.stdout.write(`${JSON.stringify({ adminPort: app.adminPort })}\n`);
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
}

async function groupStatus(admin: string): Promise<{ publishes: number; lastError?: { at: string; code: string } }> {
  const body = (await (await fetch(`${admin}/status`)).json()) as { groups: Array<{ publishes: number; lastError?: { at: string; code: string } }> };
  return body.groups[0] ?? { publishes: 0 };
}

/** Polls every 10 ms; a failed request (a reset keep-alive connection after a stall) counts as "not yet". */
async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One serve() child; per run: a good edit (waited for), then the hostile text, with /health polled every 10 ms until its refusal shows. */
async function measureServe(caseName: string, inProcess: boolean, runs: number): Promise<ServeRun[]> {
  const c = CASES.find((x) => x.name === caseName);
  if (!c) throw new Error(`no case ${caseName}`);
  const text = c.text();
  const dir = await makeTempDir('bench-config');
  const file = path.join(dir.path, 'consul-xds.yaml');
  await writeFile(file, goodConfig(0));
  const { child, admin } = await startServeChild(file, inProcess);
  const out: ServeRun[] = [];
  try {
    // One warm-up run, as in the parseConfig table.
    for (let r = 1; r <= runs + 1; r++) {
      const published = (await groupStatus(admin)).publishes;
      await writeFile(file, goodConfig(r));
      await until(async () => ((await groupStatus(admin)).publishes > published ? true : undefined), `the good edit of run ${r}`);
      const before = (await groupStatus(admin)).lastError?.at;
      const polls = pollHealth(admin, 10);
      const t0 = performance.now();
      await writeFile(file, text);
      await until(async () => ((await groupStatus(admin)).lastError?.at !== before ? true : undefined), `the refusal of run ${r}`);
      const refusalMs = performance.now() - t0;
      const { latencies, failures } = await polls.stop();
      const sorted = [...latencies].sort((a, b) => a - b);
      if (r > 1)
        out.push({ healthMaxMs: sorted[sorted.length - 1] ?? NaN, healthP99Ms: percentile(sorted, 99), polls: sorted.length, failed: failures, refusalMs });
    }
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    await dir.remove();
  }
  return out;
}

async function serveBench(cases: readonly string[], runs: number): Promise<void> {
  process.stdout.write(
    `serve() in file mode, /health polled every 10 ms from another process while each config is written and refused; ${runs} runs per case after one warm-up, medians over runs (failed: the sum); load average ${os.loadavg()[0]?.toFixed(1)} on ${os.cpus().length} CPUs\n\n`,
  );
  const head = `${'case'.padEnd(42)}${'parsing'.padEnd(12)}${'health max'.padStart(11)}${'health p99'.padStart(11)}${'polls'.padStart(7)}${'failed'.padStart(7)}${'write->refusal'.padStart(16)}`;
  process.stdout.write(`${head}\n${'-'.repeat(head.length)}\n`);
  for (const name of cases) {
    for (const [label, inProcess] of [
      ['worker', false],
      ['in-process', true],
    ] as const) {
      const r = await measureServe(name, inProcess, runs);
      const m = (f: (x: ServeRun) => number) => median(r.map(f));
      process.stdout.write(
        `${name.padEnd(42)}${label.padEnd(12)}${fmt(m((x) => x.healthMaxMs)).padStart(11)}${fmt(m((x) => x.healthP99Ms)).padStart(11)}${m((x) => x.polls)
          .toFixed(0)
          .padStart(7)}${r
          .reduce((n, x) => n + x.failed, 0)
          .toFixed(0)
          .padStart(7)}${fmt(m((x) => x.refusalMs)).padStart(16)}\n`,
      );
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '7' },
      case: { type: 'string' },
      baseline: { type: 'string' },
      'timeout-s': { type: 'string', default: '30' },
      serve: { type: 'boolean', default: false },
      // Internal: the serve() child of --serve.
      'serve-child': { type: 'string' },
      'in-process': { type: 'boolean', default: false },
    },
  });
  if (values['serve-child']) return serveChild(values['serve-child'], values['in-process']);
  if (values.serve)
    return serveBench(
      SERVE_CASES.filter((n) => !values.case || n.includes(values.case)),
      Number(values.runs),
    );
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
