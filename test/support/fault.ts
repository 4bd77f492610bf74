/**
 * The rig of the fault suite (test/integration/fault-*.test.ts). In: a scenario file's name. Out:
 * a real Consul agent, three HTTP upstreams registered as two Consul services, the control plane
 * as a child process (`node dist/src/cli.js serve` in Consul mode, one node group per data-plane
 * kind so Envoy and the TS proxy each get their own listener port), every data plane of
 * DATA_PLANES connected to it, and `underLoad`, which runs a fault while a paced load goes through
 * every data plane at once and returns one figure line per data plane.
 *
 * The control plane runs as a process of its own, as operators run it: SIGKILL is real, and a
 * stall of its event loop (a slow config refusal) shows as a slow /health, not as a stalled test.
 *
 * Config served (per group): route `/` split by weight between clusters `fault-a` (Consul service
 * fault-a: upstreams a1, a2) and `fault-b` (service fault-b: upstream b1); no active health
 * check, so what Consul says is exactly what the data plane balances over.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { NodeStatus } from '../../src/server/stream-registry.js';
import { startConsul, type ConsulAgent } from './consul.js';
import { DATA_PLANES, startDataPlane, type DataPlane, type DataPlaneKind } from './dataplanes.js';
import { binomialBounds, sendMany, startLoad, type Load, type Tally } from './traffic.js';
import { startUpstream, type Upstream } from './upstreams.js';
import { GiveUp, freePort, makeTempDir, waitUntil } from './tmp.js';

/** dist/src/cli.js, next to this compiled file's dist/test/support/. */
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

/** The parts of `/status` the suite reads (src/app.ts AppStatus, as JSON). */
export interface ServeStatus {
  readonly groups: ReadonlyArray<{
    readonly group: string;
    readonly configOrigin?: string;
    readonly snapshotVersions?: Readonly<Record<string, string>>;
    readonly lastError?: { readonly origin: string; readonly code: string; readonly message: string; readonly at: string };
  }>;
}

export interface ControlPlane {
  /** Fixed across restarts, so data planes reconnect to the same address. */
  readonly xdsPort: number;
  readonly running: boolean;
  /** http://127.0.0.1:<admin port> of the current process (a new port after each start). */
  adminUrl(): string;
  status(): Promise<ServeStatus>;
  /** GET /status/clients: every connected node (src/server/stream-registry.ts NodeStatus). */
  clients(): Promise<readonly NodeStatus[]>;
  /** Waits until every node in `nodeIds` is connected and has ACKed the current snapshot. */
  waitForNodes(nodeIds: readonly string[], timeoutMs?: number): Promise<void>;
  /** GET /health: its status and how long the answer took. */
  health(): Promise<{ status: number; ms: number; body: string }>;
  /**
   * CPU time (user + system, ms) the current process has used, from /proc (Linux). Unlike wall
   * time it barely depends on how busy the shared machine is, so it bounds work reliably.
   */
  cpuMs(): Promise<number>;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** Starts `serve` again (same flags, same xDS port); resolves when it prints its admin address. */
  start(): Promise<void>;
  /** SIGTERM (SIGKILL after 5 s) and remove the temp dir. Safe to call twice. */
  close(): Promise<void>;
  logTail(lines?: number): Promise<string>;
}

export interface ControlPlaneOptions {
  readonly consulAddress: string;
  readonly keyPrefix: string;
  readonly groups: readonly string[];
  /** More `serve` flags (e.g. a grace period). */
  readonly extraArgs?: readonly string[];
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const dir = await makeTempDir('fault-serve');
  const logFile = join(dir.path, 'serve.log');
  const xdsPort = await freePort();
  const args = [
    CLI,
    'serve',
    '--consul',
    opts.consulAddress,
    '--consul-key-prefix',
    opts.keyPrefix,
    ...opts.groups.flatMap((g) => ['--group', g]),
    '--xds-host',
    '127.0.0.1',
    '--xds-port',
    String(xdsPort),
    '--admin-port',
    '0',
    '--no-als',
    '--log-level',
    'info',
    ...(opts.extraArgs ?? []),
  ];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let adminUrl = '';
  let closed = false;

  const logTail = async (lines = 30): Promise<string> => {
    const text = await readFile(logFile, 'utf8').catch(() => '');
    return `--- last ${lines} lines of ${logFile} ---\n${text
      .split('\n')
      .slice(-lines - 1)
      .join('\n')}`;
  };
  const isRunning = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;

  const start = async (): Promise<void> => {
    const from = (await stat(logFile).catch(() => undefined))?.size ?? 0;
    const fd = openSync(logFile, 'a');
    const proc = spawn(process.execPath, args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child = proc;
    exited = new Promise((r) => proc.once('exit', () => r()));
    // serve prints `Admin: http://127.0.0.1:PORT/health ...` once the first snapshot is built.
    adminUrl = await waitUntil(
      async () => {
        if (!isRunning()) throw new GiveUp(`consul-xds serve exited (code ${proc.exitCode}, signal ${proc.signalCode})`);
        const text = (await readFile(logFile)).subarray(from).toString('utf8');
        return /Admin: (http:\/\/[^/\s]+)\/health/.exec(text)?.[1];
      },
      { what: 'consul-xds serve to print its admin address', timeoutMs: 20_000, context: () => logTail() },
    );
  };
  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc || !isRunning()) return;
    proc.kill(signal);
    const killer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  };
  const get = async (path: string): Promise<Response> => fetch(`${adminUrl}${path}`, { signal: AbortSignal.timeout(15_000) });
  const clients = async (): Promise<readonly NodeStatus[]> => ((await (await get('/status/clients')).json()) as { nodes: NodeStatus[] }).nodes;

  try {
    await start();
  } catch (err) {
    await stopWith('SIGKILL');
    await dir.remove();
    throw err;
  }
  return {
    xdsPort,
    get running() {
      return isRunning();
    },
    adminUrl: () => adminUrl,
    status: async () => (await (await get('/status')).json()) as ServeStatus,
    clients,
    waitForNodes: (nodeIds, timeoutMs = 20_000) =>
      waitUntil(
        async () => {
          const up = new Set((await clients()).filter((n) => n.upToDate).map((n) => n.nodeId));
          return nodeIds.every((id) => up.has(id));
        },
        {
          what: `nodes ${nodeIds.join(', ')} connected and up to date`,
          timeoutMs,
          intervalMs: 50,
          context: async () => JSON.stringify(await clients().catch((e: Error) => e.message)),
        },
      ).then(() => undefined),
    health: async () => {
      const t0 = performance.now();
      const res = await get('/health');
      const body = await res.text();
      return { status: res.status, ms: performance.now() - t0, body };
    },
    cpuMs: async () => {
      const stat = await readFile(`/proc/${child?.pid ?? 0}/stat`, 'utf8');
      // Fields after "pid (comm) ": state is [0], utime [11], stime [12], in clock ticks.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return ((Number(f[11]) + Number(f[12])) * 1000) / clockTicks();
    },
    kill: () => stopWith('SIGKILL'),
    start,
    close: async () => {
      if (closed) return;
      closed = true;
      await stopWith('SIGTERM');
      await dir.remove();
    },
    logTail,
  };
}

let ticks: number | undefined;
/** Clock ticks per second of /proc times (USER_HZ; 100 on every Linux we run on, asked once). */
function clockTicks(): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticks;
}

/** How long /health took to answer while something ran (the control plane's event loop, seen from outside). */
export interface HealthWatch {
  stop(): Promise<{ samples: number; maxMs: number; non200: number; firstNon200?: string }>;
}

/** Polls /health every `intervalMs` until stopped (bounded: at most 2,000 polls). */
export function watchHealth(cp: ControlPlane, intervalMs = 50): HealthWatch {
  let stopped = false;
  let samples = 0;
  let maxMs = 0;
  let non200 = 0;
  let firstNon200: string | undefined;
  const loop = (async () => {
    while (!stopped && samples < 2_000) {
      const h = await cp.health().catch((err: Error) => ({ status: 0, ms: 15_000, body: err.message }));
      samples++;
      maxMs = Math.max(maxMs, h.ms);
      if (h.status !== 200 && non200++ === 0) firstNon200 = `${h.status} ${h.body.slice(0, 200)}`;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return { samples, maxMs, non200, ...(firstNon200 !== undefined ? { firstNon200 } : {}) };
    },
  };
}

export type UpstreamName = 'a1' | 'a2' | 'b1';
export const UPSTREAMS: readonly UpstreamName[] = ['a1', 'a2', 'b1'];
/** Consul service of each upstream (and the cluster of the same name). */
export const SERVICE_OF: Readonly<Record<UpstreamName, string>> = { a1: 'fault-a', a2: 'fault-a', b1: 'fault-b' };

export interface Weights {
  readonly a: number;
  readonly b: number;
}

export const DOMAIN = 'fault.test';
/** The weights every scenario starts from (and expects to keep through a fault). */
export const GOOD_WEIGHTS: Weights = { a: 80, b: 20 };

export function configYaml(listenerPort: number, w: Weights): string {
  return `# Fault suite config (test/support/fault.ts): route / split between two Consul-backed clusters.
listener:
  listen: { address: "127.0.0.1", port: ${listenerPort} }
route:
  domain: ["${DOMAIN}"]
  cluster:
    fault-a: { prefix: ["/"], weight: ${w.a} }
    fault-b: { prefix: ["/"], weight: ${w.b} }
cluster:
  loadbalancer:
    fault-a: { lb-policy: round-robin }
    fault-b: { lb-policy: round-robin }
endpoint:
  eds:
    fault-a: { service: "fault-a" }
    fault-b: { service: "fault-b" }
`;
}

export interface FaultPlane {
  readonly kind: DataPlaneKind;
  readonly dp: DataPlane;
  readonly listenerPort: number;
  /** The KV key of this data plane's node group. */
  readonly key: string;
  send(count: number): Promise<Tally>;
}

/** One data plane's figures for one scenario. */
export interface FaultRun {
  readonly kind: DataPlaneKind;
  readonly tally: Tally;
  readonly failed: number;
  readonly failures: Load['failures'];
  readonly heldMs: number;
  /** `fault: <scenario> <kind>: N requests, F failed, held S s[, extra]` */
  readonly line: string;
}

export interface FaultRig {
  readonly consul: ConsulAgent;
  readonly cp: ControlPlane;
  readonly planes: readonly FaultPlane[];
  readonly upstreams: Readonly<Record<UpstreamName, Upstream>>;
  /** Registers one upstream in Consul (its own catalog node, check passing). */
  register(name: UpstreamName): Promise<void>;
  registerAll(): Promise<void>;
  /** The check of an upstream's instance: pass (passing) / fail (critical). */
  setHealth(name: UpstreamName, state: 'pass' | 'fail'): Promise<void>;
  /** Writes every group's config with these weights. */
  writeConfigs(w: Weights): Promise<void>;
  /**
   * Runs `fault` while a paced load goes through every data plane; `fault` may return how long
   * the data planes were on their own (default: how long `fault` took). `extra` adds figures.
   */
  underLoad(scenario: string, fault: () => Promise<number | undefined>, extra?: (kind: DataPlaneKind) => string): Promise<FaultRun[]>;
  /** Waits until every data plane sends traffic split per `w` (and nothing fails), then checks it on 400 requests. */
  expectSplit(w: Weights, why: string): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultRig(name: string, opts: { extraServeArgs?: readonly string[] } = {}): Promise<FaultRig> {
  const cleanups: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    const consul = await startConsul();
    cleanups.push(() => consul.destroy());
    const ups = await Promise.all(UPSTREAMS.map((u) => startUpstream(u)));
    cleanups.push(async () => void (await Promise.all(ups.map((u) => u.close()))));
    const upstreams = Object.fromEntries(UPSTREAMS.map((u, i) => [u, ups[i] as Upstream])) as Record<UpstreamName, Upstream>;
    const keyPrefix = `fault-${name}/`;
    const ports = new Map<DataPlaneKind, number>();
    for (const kind of DATA_PLANES) ports.set(kind, await freePort());

    // Catalog registrations of external nodes, not agent services: a dev agent re-creates its own
    // services from its data dir on restart (with TTL checks critical), the catalog of other nodes
    // it loses; so a restart leaves the catalog truly empty, as the scenarios need.
    const register = (u: UpstreamName, status: 'passing' | 'critical' = 'passing'): Promise<void> =>
      consul.catalogRegister({
        node: `fault-node-${u}`,
        address: '127.0.0.1',
        service: { id: `fault-${u}`, name: SERVICE_OF[u], port: upstreams[u].port, address: '127.0.0.1' },
        status,
      });
    const registerAll = async (): Promise<void> => {
      for (const u of UPSTREAMS) await register(u);
    };
    const writeConfigs = async (w: Weights): Promise<void> => {
      for (const [kind, port] of ports) await consul.kvPut(`${keyPrefix}${kind}`, configYaml(port, w));
    };
    await registerAll();
    await writeConfigs(GOOD_WEIGHTS);

    const cp = await startControlPlane({ consulAddress: consul.address, keyPrefix, groups: DATA_PLANES, extraArgs: opts.extraServeArgs });
    cleanups.push(() => cp.close());
    const planes: FaultPlane[] = [];
    for (const kind of DATA_PLANES) {
      const dp = await startDataPlane(kind, { xdsPort: cp.xdsPort, nodeId: `fault-${name}-${kind}`, nodeCluster: kind, context: () => cp.logTail() });
      cleanups.push(() => dp.stop());
      const listenerPort = ports.get(kind) ?? 0;
      planes.push({
        kind,
        dp,
        listenerPort,
        key: `${keyPrefix}${kind}`,
        send: (count) => sendMany({ port: listenerPort, host: DOMAIN, path: '/fault', count, concurrency: 4 }),
      });
    }
    await Promise.all(planes.map((p) => p.dp.ready()));

    const expectSplit = async (w: Weights, why: string): Promise<void> => {
      const p = w.a / (w.a + w.b);
      await Promise.all(
        planes.map(async (plane) => {
          const inBounds = (t: Tally, sigmas: number): boolean => {
            const { low, high } = binomialBounds(t.total, p, sigmas);
            const a = t.count('a1') + t.count('a2');
            return t.byStatus.get(200) === t.total && a >= low && a <= high;
          };
          // Polled on small runs first (an update may still be on its way), then checked on 400.
          await plane.dp.waitFor(async () => inBounds(await plane.send(100), 5), {
            what: `traffic split a:b = ${w.a}:${w.b} (${why})`,
            timeoutMs: 15_000,
            intervalMs: 100,
          });
          const t = await plane.send(400);
          assert.ok(inBounds(t, 4), `${plane.kind}: traffic split a:b = ${w.a}:${w.b} (${why}): ${t.describe()}`);
        }),
      );
    };

    const underLoad: FaultRig['underLoad'] = async (scenario, fault, extra) => {
      const loads = planes.map((p) => startLoad({ port: p.listenerPort, host: DOMAIN, path: '/fault' }));
      try {
        await new Promise((r) => setTimeout(r, 300)); // traffic flowing before the fault
        const t0 = performance.now();
        const held = (await fault()) ?? performance.now() - t0;
        await new Promise((r) => setTimeout(r, 500)); // and a moment after it
        const tallies = await Promise.all(loads.map((l) => l.stop()));
        return planes.map((p, i) => {
          const tally = tallies[i] as Tally;
          const load = loads[i] as Load;
          const more = extra ? `, ${extra(p.kind)}` : '';
          return {
            kind: p.kind,
            tally,
            failed: load.failed,
            failures: load.failures,
            heldMs: held,
            line: `fault: ${scenario} ${p.kind}: ${tally.total} requests, ${load.failed} failed, held ${(held / 1000).toFixed(1)} s${more}`,
          };
        });
      } finally {
        await Promise.all(loads.map((l) => l.stop()));
      }
    };

    return {
      consul,
      cp,
      planes,
      upstreams,
      register,
      registerAll,
      setHealth: (u, state) => register(u, state === 'pass' ? 'passing' : 'critical'),
      writeConfigs,
      underLoad,
      expectSplit,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * For a scenario file: starts the rig in a before() hook (and checks the 80:20 split serves),
 * closes it in after(); returns the getter the tests use.
 */
export function faultRigHooks(name: string): () => FaultRig {
  let rig: FaultRig | undefined;
  before(async () => {
    rig = await startFaultRig(name);
    await rig.expectSplit(GOOD_WEIGHTS, 'at start');
  });
  after(async () => {
    await rig?.close();
  });
  return () => {
    assert.ok(rig, `fault rig '${name}' not started`);
    return rig;
  };
}

/**
 * Prints every run's figure line and checks each data plane in a subtest of its own (so a failure
 * names the kind): `failed` requests must be exactly `expectFailed` (0 unless a failure is the
 * right answer), the answered ones split per GOOD_WEIGHTS, then `more` (other per-plane checks) runs.
 */
export async function checkRuns(
  t: TestContext,
  rig: FaultRig,
  runs: readonly FaultRun[],
  opts: { expectFailed?: number; more?: (run: FaultRun) => void | Promise<void> } = {},
): Promise<void> {
  for (const run of runs) t.diagnostic(run.line);
  const p = GOOD_WEIGHTS.a / (GOOD_WEIGHTS.a + GOOD_WEIGHTS.b);
  for (const run of runs) {
    await t.test(run.kind, async () => {
      assert.ok(run.tally.total > 0, `${run.line}: no request was sent`);
      assert.equal(run.failed, opts.expectFailed ?? 0, await describeFailures(run, rig.cp));
      // The last good config served throughout: the answered requests split 80:20 all along.
      const answered = run.tally.count('a1') + run.tally.count('a2') + run.tally.count('b1');
      const { low, high } = binomialBounds(answered, p, 4.5);
      const a = run.tally.count('a1') + run.tally.count('a2');
      assert.ok(a >= low && a <= high, `${run.line}: split a:b = ${GOOD_WEIGHTS.a}:${GOOD_WEIGHTS.b} during the fault: ${run.tally.describe()}`);
      await opts.more?.(run);
    });
  }
}

/** One assertion message for a run's failures: the figure line, what failed, and the control plane's log. */
export async function describeFailures(run: FaultRun, cp: ControlPlane): Promise<string> {
  const sample = run.failures.map((f) => `  ${f.status} ${f.upstream || '<data plane>'}: ${f.body.slice(0, 120)}`).join('\n');
  return `${run.line}\n${run.tally.describe()}\nfirst failures:\n${sample}\n${await cp.logTail(15)}`;
}
