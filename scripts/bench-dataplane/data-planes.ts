/**
 * What the load generator aims at, one at a time: the upstreams directly (the baseline that
 * added latency is measured against), real Envoy (the test harness's ADS-only bootstrap) and our
 * proxy (`consul-xds proxy`), both at the same worker count (`--concurrency`, ctx.workers). In: the control plane's xDS
 * port, the listener port its config names, the upstream ports. Out: a Target once it answers
 * both protocols with the config applied: the port per protocol, the pid whose CPU is the data
 * plane's, and stop().
 *
 * Both data planes get the same xDS config from the same control plane and bind the same
 * listener port, so they run one after the other, never together.
 */
import path from 'node:path';
import { startEnvoy } from '../../test/support/envoy.js';
import type { ChildSet } from './children.js';
import { ROOT } from './echo.js';
import type { Protocol } from './load.js';
import { waitServing } from './probe.js';

export const TARGET_NAMES = ['direct', 'envoy', 'consul-xds'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

export interface Target {
  readonly name: TargetName;
  port(protocol: Protocol): number;
  /** The data plane's pid (its CPU is what each request costs it); undefined for direct. */
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

export interface TargetContext {
  readonly children: ChildSet;
  readonly xdsPort: number;
  readonly listenerPort: number;
  readonly h1Upstream: number;
  readonly grpcUpstream: number;
  /** Workers of both data planes: Envoy's --concurrency, and ours. */
  readonly workers: number;
  /** Extra node flags for our proxy (e.g. --max-semi-space-size=32), to measure a tuning. */
  readonly proxyNodeArgs: readonly string[];
  /** The node binary our proxy runs on (another version than the benchmark's, to compare runtimes). */
  readonly proxyNode: string;
}

export async function startTarget(name: TargetName, ctx: TargetContext, cpuProfDir?: string): Promise<Target> {
  switch (name) {
    case 'direct':
      return {
        name,
        port: (p) => (p === 'http1' ? ctx.h1Upstream : ctx.grpcUpstream),
        pid: undefined,
        stop: () => Promise.resolve(),
      };
    case 'envoy':
      return startEnvoyTarget(ctx);
    case 'consul-xds':
      return startOurProxy(ctx, cpuProfDir);
  }
}

async function startEnvoyTarget(ctx: TargetContext): Promise<Target> {
  const envoy = await startEnvoy({ xdsPort: ctx.xdsPort, nodeId: 'bench-envoy', nodeCluster: 'bench', logLevel: 'warn', concurrency: ctx.workers });
  // One stop for both callers (this target's owner, the ChildSet on Ctrl-C / hard timeout): the
  // second waits for the first, so nobody exits before Envoy's temp dir is removed.
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopping ??= envoy.stop().finally(() => forget()));
  const forget = ctx.children.adopt(envoy.pid, stop);
  try {
    await waitServing('Envoy', ctx.listenerPort, ctx.listenerPort);
  } catch (err) {
    const tail = await envoy.logTail();
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tail}`);
  }
  return { name: 'envoy', port: () => ctx.listenerPort, pid: envoy.pid, stop };
}

/**
 * Our proxy as `consul-xds proxy` in its own Node process (what users run). With `cpuProfDir`,
 * under `node --cpu-prof`: the profile is written there when the process exits after SIGTERM.
 */
async function startOurProxy(ctx: TargetContext, cpuProfDir?: string): Promise<Target> {
  const cli = path.join(ROOT, 'dist', 'src', 'cli.js');
  const nodeArgs = [...ctx.proxyNodeArgs, ...(cpuProfDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : [])];
  const args = [
    ...nodeArgs,
    cli,
    'proxy',
    '--xds',
    `127.0.0.1:${ctx.xdsPort}`,
    '--node-id',
    'bench-consul-xds',
    '--node-cluster',
    'bench',
    '--admin-port',
    '0',
    '--drain-time-s',
    '1',
    '--concurrency',
    String(ctx.workers),
    '--log-level',
    'warn',
  ];
  const child = await ctx.children.start('consul-xds proxy', ctx.proxyNode, args, /admin http:\/\/[^/]+\/ready/);
  // Writing a CPU profile of a busy run takes a few seconds after SIGTERM.
  const stop = (): Promise<void> => child.stop(cpuProfDir !== undefined ? 30_000 : 5_000);
  try {
    await waitServing('consul-xds proxy', ctx.listenerPort, ctx.listenerPort);
  } catch (err) {
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- proxy output ---\n${child.tail()}`);
  }
  return { name: 'consul-xds', port: () => ctx.listenerPort, pid: child.pid, stop };
}
