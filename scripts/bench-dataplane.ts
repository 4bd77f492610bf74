/**
 * Data-plane benchmark: our TS proxy next to real Envoy, fed the same xDS config, in one run.
 *
 *   npm run build && node dist/scripts/bench-dataplane.js [--duration-s 10] [--rounds 3] [--cpu-prof DIR]
 *
 * In: flags (below). Out: on stdout, a table per protocol (HTTP/1.1 keep-alive, gRPC unary) and
 * load: req/s, p50/p99 latency, latency added over going to the upstream directly, data-plane CPU
 * per request, and the ours/Envoy ratios (medians over rounds); with --cpu-prof, where our
 * proxy's CPU goes under load, by group and by function. Progress on stderr; --json FILE keeps
 * every run's figures.
 *
 * One run: the upstreams start as their own processes (bench-dataplane/h1-upstream.ts, a minimal
 * keep-alive HTTP/1.1 server; bench-dataplane/grpc-upstream.ts, a gRPC unary echo on node:http2;
 * three ports each, the endpoints of two clusters); our control plane (`serve`, file mode,
 * static endpoints; in this process, idle while load runs) serves bench-dataplane/config.ts's
 * YAML; then, for each worker count (--workers, default 1 and 2) and round, each target in turn:
 * direct to the upstream, Envoy and our proxy, both at that --concurrency; one table per count. For each protocol and load the load generator (wrk / ghz, its own
 * process, 127.0.0.1 only) runs a warm-up, then the measured run. Every child process is stopped
 * at the end, on Ctrl-C and at the hard timeout. See docs/benchmarks.md ("TS data plane vs Envoy").
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { serve, type RunningApp } from '../src/app.js';
import { silentLogger } from '../src/log.js';
import { freePort } from '../test/support/tmp.js';
import { envoyBinary } from '../test/support/envoy.js';
import { cpuMs, treeCpuMs } from './bench/proc.js';
import { profileTop } from './bench/profile-top.js';
import { ChildSet, type Child } from './bench-dataplane/children.js';
import { benchDataplaneYaml } from './bench-dataplane/config.js';
import { startTarget, TARGET_NAMES, type Target, type TargetName } from './bench-dataplane/data-planes.js';
import { ROOT } from './bench-dataplane/echo.js';
import { installTools, PROTOCOL_LABEL, runLoad, type LoadResult, type Protocol } from './bench-dataplane/load.js';
import { formatGroups } from './bench-dataplane/profile-groups.js';
import { cutProfile, monotonicUs } from './bench-dataplane/profile-window.js';
import { formatTable, summarize, type Cell } from './bench-dataplane/table.js';

const PROTOCOLS = ['http1', 'grpc'] as const satisfies readonly Protocol[];

const USAGE = `usage: node dist/scripts/bench-dataplane.js [options]
  --duration-s S       measured seconds per run (default 10)
  --warmup-s S         warm-up seconds before each measured run, not counted (default 2)
  --loads LIST         concurrencies, comma-separated: HTTP/1.1 connections, or gRPC calls in
                       flight on one connection (default 16,1; 1 = unloaded latency)
  --rps N              gRPC only: ghz starts at most N calls per second (an open rate instead of
                       as fast as answers come), so CPU per request is compared at the same work
                       per second; a target that cannot keep up shows it in req/s
  --workers LIST       data-plane worker counts, comma-separated: Envoy's --concurrency and ours,
                       the same in each table (default 1,2)
  --rounds N           repeat direct/Envoy/ours N times; the table shows medians (default 1)
  --protocols LIST     http1,grpc (default both)
  --planes LIST        envoy,consul-xds (default both; direct always runs)
  --cpu-prof DIR       afterwards, profile our proxy under load (node --cpu-prof), one run per
                       protocol at the first load, and print where the time goes
  --profile-s S        seconds of load per profile run (default: --duration-s)
  --proxy-node-args=A extra node flags for our proxy, space-separated (--proxy-node-args="--max-semi-space-size=32")
  --proxy-node BIN     the node binary that runs our proxy (default: the one running this script), to
                       measure another Node version against the same Envoy, upstreams and load
  --timeout-s S        hard limit for the whole run; exits 2 when reached (default 900)
  --json FILE          also write every run's figures as JSON
  --help`;

interface Options {
  readonly durationS: number;
  readonly warmupS: number;
  readonly loads: readonly number[];
  readonly rps?: number;
  readonly rounds: number;
  readonly workers: readonly number[];
  readonly protocols: readonly Protocol[];
  readonly planes: readonly TargetName[];
  readonly cpuProf?: string;
  readonly profileS: number;
  readonly timeoutS: number;
  readonly json?: string;
  readonly proxyNodeArgs: readonly string[];
  readonly proxyNode: string;
}

function intFlag(flag: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${flag}: expected an integer >= ${min}, got "${value}"`);
  return n;
}

function listFlag<T extends string>(flag: string, value: string | undefined, allowed: readonly T[], fallback: readonly T[]): T[] {
  if (value === undefined) return [...fallback];
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const i of items) if (!(allowed as readonly string[]).includes(i)) throw new Error(`--${flag}: "${i}" is not one of ${allowed.join(', ')}`);
  if (items.length === 0) throw new Error(`--${flag}: empty list`);
  return items as T[];
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      'duration-s': { type: 'string' },
      'warmup-s': { type: 'string' },
      loads: { type: 'string' },
      rps: { type: 'string' },
      rounds: { type: 'string' },
      workers: { type: 'string' },
      protocols: { type: 'string' },
      planes: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'profile-s': { type: 'string' },
      'timeout-s': { type: 'string' },
      'proxy-node-args': { type: 'string' },
      'proxy-node': { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const durationS = intFlag('duration-s', values['duration-s'], 10);
  const loads = (values.loads ?? '16,1').split(',').map((s) => intFlag('loads', s.trim(), 1));
  const protocols = listFlag('protocols', values.protocols, PROTOCOLS, PROTOCOLS);
  if (values.rps !== undefined && protocols.includes('http1')) throw new Error('--rps: wrk has no fixed rate; add --protocols grpc');
  return {
    durationS,
    warmupS: intFlag('warmup-s', values['warmup-s'], 2, 0),
    loads,
    ...(values.rps !== undefined ? { rps: intFlag('rps', values.rps, 1) } : {}),
    rounds: intFlag('rounds', values.rounds, 1),
    workers: (values.workers ?? '1,2').split(',').map((s) => intFlag('workers', s.trim(), 1)),
    protocols,
    planes: ['direct', ...listFlag('planes', values.planes, ['envoy', 'consul-xds'] as const, ['envoy', 'consul-xds'])],
    ...(values['cpu-prof'] !== undefined ? { cpuProf: path.resolve(values['cpu-prof']) } : {}),
    profileS: intFlag('profile-s', values['profile-s'], durationS),
    timeoutS: intFlag('timeout-s', values['timeout-s'], 900),
    ...(values.json !== undefined ? { json: values.json } : {}),
    proxyNodeArgs: (values['proxy-node-args'] ?? '').split(' ').filter(Boolean),
    proxyNode: values['proxy-node'] ?? process.execPath,
  };
}

const log = (line: string): void => {
  process.stderr.write(`[bench-dataplane] ${line}\n`);
};

function fmtLoad(r: LoadResult): string {
  return `${r.rps.toFixed(0)} req/s, p50 ${(r.p50Us / 1000).toFixed(3)} ms, p99 ${(r.p99Us / 1000).toFixed(3)} ms${r.errors > 0 ? `, ${r.errors} errors` : ''}`;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const children = new ChildSet();
  let app: RunningApp | undefined;
  let workDir: string | undefined;
  const cleanup = async (): Promise<void> => {
    await children.stopAll();
    await app?.close();
    app = undefined;
    if (workDir) await rm(workDir, { recursive: true, force: true });
    workDir = undefined;
  };
  const hardStop = setTimeout(() => {
    log(`hard timeout: ${opts.timeoutS} s passed; stopping every child process`);
    void cleanup().finally(() => process.exit(2));
  }, opts.timeoutS * 1000);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping every child process`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    const tools = installTools(opts.protocols);
    if (opts.planes.includes('envoy')) log(`envoy: ${await envoyBinary()}`);
    log(
      `tools: ${Object.entries(tools)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; ${os.cpus().length} cores; node ${process.version}`,
    );

    const upstreamScript = (name: string): string => path.join(ROOT, 'dist', 'scripts', 'bench-dataplane', `${name}.js`);
    const ports = (c: Child): number[] => (c.ready[1] ?? '').split(',').map(Number);
    const h1Up = await children.start('h1 upstream', process.execPath, [upstreamScript('h1-upstream'), '3'], /^READY ([\d,]+)$/);
    const grpcUp = await children.start('gRPC upstream', process.execPath, [upstreamScript('grpc-upstream'), '3'], /^READY ([\d,]+)$/);
    const h1Ports = ports(h1Up);
    const grpcPorts = ports(grpcUp);

    workDir = await mkdtemp(path.join(os.tmpdir(), 'consul-xds-bench-dataplane-'));
    const listenerPort = await freePort();
    const configFile = path.join(workDir, 'config.yaml');
    await writeFile(configFile, benchDataplaneYaml({ listener: listenerPort, h1Upstreams: h1Ports, grpcUpstreams: grpcPorts }));
    app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
    const ctx = {
      workers: 1,
      children,
      xdsPort: app.xdsPort,
      listenerPort,
      h1Upstream: h1Ports[0] ?? 0,
      grpcUpstream: grpcPorts[0] ?? 0,
      proxyNodeArgs: opts.proxyNodeArgs,
      proxyNode: opts.proxyNode,
    };
    log(
      `control plane xDS 127.0.0.1:${app.xdsPort}; listener :${listenerPort}; HTTP/1.1 upstreams ${h1Ports.join(',')}; gRPC upstreams ${grpcPorts.join(',')}`,
    );

    const upstreamPid = (p: Protocol): number => (p === 'http1' ? h1Up.pid : grpcUp.pid);
    const rate = opts.rps !== undefined ? { rps: opts.rps } : {};
    const cells: Cell[] = [];
    const measure = async (target: Target, round: number, protocol: Protocol, concurrency: number): Promise<void> => {
      const spec = { protocol, port: target.port(protocol), concurrency, ...rate };
      if (opts.warmupS > 0) await runLoad(children, tools, { ...spec, durationS: opts.warmupS });
      const dp0 = target.pid !== undefined ? treeCpuMs(target.pid) : 0;
      const up0 = cpuMs(upstreamPid(protocol));
      const load = await runLoad(children, tools, { ...spec, durationS: opts.durationS });
      const perReq = (ms: number): number => (load.requests > 0 ? (ms * 1000) / load.requests : NaN);
      const cell: Cell = {
        round,
        target: target.name,
        protocol,
        concurrency,
        load,
        dpCpuUs: target.pid !== undefined ? perReq(treeCpuMs(target.pid) - dp0) : undefined,
        upstreamCpuUs: perReq(cpuMs(upstreamPid(protocol)) - up0),
      };
      cells.push(cell);
      log(
        `round ${round} ${target.name} ${PROTOCOL_LABEL[protocol]} x${concurrency}: ${fmtLoad(load)}${cell.dpCpuUs !== undefined ? `, ${cell.dpCpuUs.toFixed(1)} us CPU/req` : ''}`,
      );
    };

    const tables: Record<number, { cells: Cell[]; rows: ReturnType<typeof summarize> }> = {};
    for (const workers of opts.workers) {
      const before = cells.length;
      for (let round = 1; round <= opts.rounds; round++) {
        for (const name of TARGET_NAMES.filter((t) => opts.planes.includes(t))) {
          log(`round ${round}: starting ${name}${name === 'direct' ? '' : ` --concurrency ${workers}`}`);
          const target = await startTarget(name, { ...ctx, workers });
          try {
            for (const protocol of opts.protocols) for (const c of opts.loads) await measure(target, round, protocol, c);
          } finally {
            await target.stop();
          }
        }
      }
      const own = cells.slice(before);
      tables[workers] = { cells: own, rows: summarize(own) };
    }

    for (const workers of opts.workers) {
      const rows = tables[workers]?.rows ?? [];
      const table = formatTable(rows, opts.protocols, opts.loads);
      process.stdout.write(
        `\nData planes at --concurrency ${workers} (Envoy's and ours), same xDS config, ${opts.durationS} s per run after ${opts.warmupS} s warm-up, median of ${opts.rounds} round(s); ` +
          `${os.cpus().length} shared cores, load generator in its own process, 127.0.0.1 only` +
          `${opts.rps !== undefined ? `; at most ${opts.rps} calls/s` : ''}` +
          `${opts.proxyNodeArgs.length > 0 ? `; our proxy runs with node ${opts.proxyNodeArgs.join(' ')}` : ''}` +
          `${opts.proxyNode !== process.execPath ? `; our proxy runs on ${opts.proxyNode}` : ''}.\n` +
          `+p50/+p99: latency added over calling the upstream directly. CPU us/req: the data plane's CPU (its workers' too) per completed request.\n\n${table}\n`,
      );
    }

    const profiles: Record<string, string> = {};
    if (opts.cpuProf !== undefined && opts.planes.includes('consul-xds')) {
      const concurrency = opts.loads[0] ?? 16;
      for (const protocol of opts.protocols) {
        const dir = path.join(opts.cpuProf, protocol);
        mkdirSync(dir, { recursive: true });
        for (const f of readdirSync(dir)) if (f.endsWith('.cpuprofile')) await rm(path.join(dir, f));
        log(`profiling consul-xds proxy: ${PROTOCOL_LABEL[protocol]} x${concurrency} for ${opts.profileS} s`);
        const target = await startTarget('consul-xds', ctx, dir);
        let window: [number, number];
        try {
          if (opts.warmupS > 0) await runLoad(children, tools, { protocol, port: target.port(protocol), concurrency, ...rate, durationS: opts.warmupS });
          const from = monotonicUs();
          const load = await runLoad(children, tools, { protocol, port: target.port(protocol), concurrency, ...rate, durationS: opts.profileS });
          window = [from, monotonicUs()];
          log(`under the profiler: ${fmtLoad(load)}`);
        } finally {
          await target.stop();
        }
        const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile') && !f.endsWith('.window.cpuprofile'));
        if (!file) throw new Error(`no .cpuprofile in ${dir}: the proxy did not exit cleanly`);
        // Only the measured load: start-up and warm-up are cut away.
        const cut = cutProfile(path.join(dir, file), ...window);
        profiles[protocol] = cut;
        process.stdout.write(
          `\n== consul-xds proxy under ${PROTOCOL_LABEL[protocol]} x${concurrency}, measured window only: ${cut}\n` +
            `${formatGroups(cut)}\n\n${profileTop(cut, 20)}\n`,
        );
      }
    }

    if (opts.json !== undefined) {
      writeFileSync(opts.json, JSON.stringify({ options: opts, node: process.version, tables, profiles }, null, 2));
      log(`wrote ${opts.json}`);
    }
  } finally {
    clearTimeout(hardStop);
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench-dataplane: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
