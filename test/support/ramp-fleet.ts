/**
 * The canary-ramp fleet for test/integration/ramp-envoy.test.ts and `npm run bench:ramp`: a real
 * Consul agent holding the config in KV, two `serve` sidecars on it (A serves Envoy's xDS; both
 * run an ALS sink and are registered in Consul as service consul-xds, as `serve --register`
 * does), two real Envoys (one on each sidecar's xDS; both bind the same listener ports, which
 * Envoy opens with SO_REUSEPORT, so the kernel spreads connections over them), and the seed's two upstreams: web-api-perl (the baseline) and web-api-go
 * (the canary, which can be told to answer 503). The config has two listeners, each logging to
 * one sidecar, so the fleet's figures are only right when the ramp sums both sidecars.
 * Also: the `consul-xds` CLI as a child process, the recorded ramp state, and the canary's weight
 * as the Envoy holds it (its route config dump).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { registerSidecar } from '../../src/ramp/fleet.js';
import { DEFAULT_RAMPS_PREFIX, rampId, type RampState } from '../../src/ramp/spec.js';
import { readRamp, stateKey } from '../../src/ramp/store.js';
import { startConsul, type ConsulAgent } from './consul.js';
import { startDataPlane, watchNode, type DataPlane, type NodeWatch } from './dataplanes.js';
import { startUpstream, type Upstream } from './upstreams.js';
import { freePort } from './tmp.js';

export const DOMAIN = 'app.test';
export const CONFIG_KEY = 'consul-xds/ramp-demo';
export const PREFIX = '/api';
export const CANARY = 'web-api-go';
export const BASELINE = 'web-api-perl';
export const RAMP_KEY = stateKey(DEFAULT_RAMPS_PREFIX, rampId(CANARY, PREFIX));

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const cli = join(repoRoot, 'dist/src/cli.js');

export function configYaml(p: { listenerA: number; listenerB: number; alsA: number; alsB: number; perl: number; go: number }): string {
  return `# seed 001's /api migration, Perl -> Go, as a ramp (test/support/ramp-fleet.ts)
listener:
  edge-a:
    address: "127.0.0.1"
    port: ${p.listenerA}
    access-log:
      grpc: { address: "127.0.0.1", port: ${p.alsA}, log-name: "edge-a", buffer-size-bytes: 0 }
  edge-b:
    address: "127.0.0.1"
    port: ${p.listenerB}
    access-log:
      grpc: { address: "127.0.0.1", port: ${p.alsB}, log-name: "edge-b", buffer-size-bytes: 0 }
route:
  domain: ["${DOMAIN}"]
  cluster:
    web-api-perl:   # the old app
      prefix: ["/api"]
      weight: 100
    web-api-go:     # the rewrite, ramped in
      prefix: ["/api"]
      weight: 0
cluster:
  loadbalancer:
    web-api-perl: { lb-policy: "round-robin" }
    web-api-go: { lb-policy: "round-robin" }
endpoint:
  eds:
    web-api-perl:
      static: [{ address: "127.0.0.1", port: ${p.perl} }]
    web-api-go:
      static: [{ address: "127.0.0.1", port: ${p.go} }]
`;
}

export interface RampFleet {
  readonly consul: ConsulAgent;
  readonly perl: Upstream;
  readonly go: Upstream;
  readonly sidecars: readonly RunningApp[];
  readonly envoys: readonly DataPlane[];
  readonly nodes: readonly NodeWatch[];
  readonly listeners: readonly number[];
  readonly configText: string;
  /** The Consul flags of every CLI call. */
  readonly consulArgs: readonly string[];
  /** Runs `consul-xds ...` to its end. */
  run(args: readonly string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Starts `consul-xds ...` and returns the child (its output collected in `output()`). */
  spawn(args: readonly string[]): { child: ChildProcess; output(): string; exited: Promise<number | null> };
  state(): Promise<RampState | undefined>;
  /** The canary's weight in each Envoy's route for /api (0 when it is out of the split). */
  canaryWeightAtEnvoys(): Promise<number[]>;
  /** Requests each Envoy has sent to `cluster` so far (its upstream_rq_total). */
  upstreamRequests(cluster: string): Promise<number[]>;
  /** Puts the starting config back (canary at 0) and forgets any ramp; waits until the Envoy has it. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export async function startRampFleet(): Promise<RampFleet> {
  const consul = await startConsul();
  const [perl, go] = await Promise.all([startUpstream(BASELINE), startUpstream(CANARY)]);
  const ports = { listenerA: await freePort(), listenerB: await freePort(), alsA: await freePort(), alsB: await freePort(), perl: perl.port, go: go.port };
  const configText = configYaml(ports);
  await consul.kvPut(CONFIG_KEY, configText);
  const sidecars: RunningApp[] = [];
  const deregister: Array<() => Promise<void>> = [];
  for (const [name, als] of [
    ['a', ports.alsA],
    ['b', ports.alsB],
  ] as const) {
    const app = await serve({
      consul: { address: consul.address, key: CONFIG_KEY, watch: { backoffBaseMs: 100, backoffMaxMs: 500 }, startupTimeoutMs: 10_000 },
      xds: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      als: { host: '127.0.0.1', port: als, file: '/dev/null', windowSeconds: 60 },
      logger: silentLogger,
    });
    sidecars.push(app);
    deregister.push(
      await registerSidecar(consul.client, { id: `consul-xds-${name}`, service: 'consul-xds', admin: `127.0.0.1:${app.adminPort}`, healthPath: '/health' }),
    );
  }
  const nodes: NodeWatch[] = [];
  const envoys: DataPlane[] = [];
  for (const [i, app] of sidecars.entries()) {
    const nodeId = `ramp-envoy-${'ab'[i]}`;
    const node = watchNode(app.xdsServer.registry, nodeId);
    nodes.push(node);
    const envoy = await startDataPlane('envoy', { xdsPort: app.xdsPort, nodeId, nodeCluster: 'edge', context: () => node.describe() });
    envoys.push(envoy);
    await envoy.ready();
  }

  const consulArgs = ['--consul', consul.address, '--consul-key', CONFIG_KEY];
  const env = { PATH: process.env.PATH };
  const fleet: RampFleet = {
    consul,
    perl,
    go,
    sidecars,
    envoys,
    nodes,
    listeners: [ports.listenerA, ports.listenerB],
    configText,
    consulArgs,
    run: (args, timeoutMs = 120_000) =>
      new Promise((done) => {
        execFile(process.execPath, [cli, ...args, ...consulArgs], { env, timeout: timeoutMs }, (err, stdout, stderr) => {
          done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
        });
      }),
    spawn(args) {
      const child = spawn(process.execPath, [cli, ...args, ...consulArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      return { child, output: () => out, exited };
    },
    state: async () => (await readRamp(consul.client, RAMP_KEY))?.state,
    canaryWeightAtEnvoys: () =>
      Promise.all(envoys.map(async (envoy) => canaryWeight(JSON.parse(await envoy.admin('/config_dump?resource=dynamic_route_configs'))))),
    upstreamRequests: (cluster) => Promise.all(envoys.map(async (envoy) => (await envoy.stat(`cluster.${cluster}.upstream_rq_total`)) ?? 0)),
    async reset() {
      go.setResponseStatus(200);
      await consul.kvDelete(RAMP_KEY);
      await consul.kvDelete(`${RAMP_KEY}.lock`);
      await consul.kvPut(CONFIG_KEY, configText);
      await envoys[0]!.waitFor(async () => (await fleet.canaryWeightAtEnvoys()).every((w) => w === 0), {
        what: 'both Envoys back at web-api-go weight 0',
        intervalMs: 50,
      });
    },
    async close() {
      for (const node of nodes) node.close();
      for (const envoy of envoys) await envoy.stop();
      for (const d of deregister) await d().catch(() => undefined);
      for (const app of sidecars) await app.close();
      await Promise.all([perl.close(), go.close()]);
      await consul.destroy();
    },
  };
  return fleet;
}

/** The canary's weight in a route config dump: its weighted_clusters entry, 100 when it is the route's only cluster, else 0. */
function canaryWeight(dump: unknown): number {
  let weight = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (o.name === CANARY && typeof o.weight === 'number') weight = Math.max(weight, o.weight);
      if (o.cluster === CANARY) weight = 100;
      Object.values(o).forEach(walk);
    }
  };
  walk(dump);
  return weight;
}
