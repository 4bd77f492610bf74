/**
 * The data planes the traffic suite runs every scenario against: real Envoy and our own
 * `consul-xds proxy` (the bundled TS data plane), each speaking State-of-the-World ADS or
 * incremental (delta) ADS (`ads_config.api_type: DELTA_GRPC` in its bootstrap). In: a kind and the facts all need (the xDS port
 * of a control plane on 127.0.0.1, a node id and cluster). Out: one `DataPlane` shape for both:
 * admin URL, `/ready` wait, counters from `/stats?format=json`, a deadline poll whose failure
 * message carries the data plane's log tail, and stop().
 *
 * The TS proxy runs as a child process through the real CLI (`node dist/src/cli.js proxy ...`),
 * like Envoy does and like users run it: its own event loop (the test's load generator and the
 * control plane do not share it), its own log file, and a crash shows as an exit, not as a
 * failure of the test process.
 *
 * Also here: `watchNode`, the control plane's view of one data plane (which versions it ACKed,
 * what it NACKed and why), so scenarios can time an update to the moment the data plane accepted
 * it, and report a NACK's message instead of a bare traffic mismatch; `assertNoRejectedUpdate`,
 * the end-of-run check that nothing was NACKed (and, for Envoy, nothing rejected).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NackEvent, StreamRegistry } from '../../src/server/stream-registry.js';
import type { TypeShort } from '../../src/cache/snapshot.js';
import { adsBootstrap, startEnvoy, type EnvoyHandle } from './envoy.js';
import { GiveUp, makeTempDir, waitUntil, type WaitOptions } from './tmp.js';

export type DataPlaneKind = 'envoy' | 'envoy-delta' | 'ts-proxy' | 'ts-proxy-delta' | 'ts-proxy-c2';

const ALL_KINDS: readonly DataPlaneKind[] = ['envoy', 'envoy-delta', 'ts-proxy', 'ts-proxy-delta', 'ts-proxy-c2'];

/** Which program a kind runs (Envoy-only checks and message formats depend on it, not on the protocol). */
export function dataPlaneProgram(kind: DataPlaneKind): 'envoy' | 'ts-proxy' {
  return kind === 'envoy' || kind === 'envoy-delta' ? 'envoy' : 'ts-proxy';
}

/** Worker count of the TS proxy kinds: ts-proxy-c2 runs `--concurrency 2` (SotW), the others one process. */
export function proxyConcurrency(kind: DataPlaneKind): number {
  return kind === 'ts-proxy-c2' ? 2 : 1;
}

/** The kind speaks incremental (delta) xDS. */
export function isDelta(kind: DataPlaneKind): boolean {
  return kind.endsWith('-delta');
}

/**
 * The kinds every traffic scenario runs against: all of them, unless TRAFFIC_DATA_PLANES narrows
 * them for a local run (`TRAFFIC_DATA_PLANES=ts-proxy,envoy-delta`). CI sets nothing and gets all.
 */
export const DATA_PLANES: readonly DataPlaneKind[] = selectKinds(process.env.TRAFFIC_DATA_PLANES);

function selectKinds(env: string | undefined): readonly DataPlaneKind[] {
  if (env === undefined || env.trim() === '') return ALL_KINDS;
  const picked = env
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = picked.filter((k) => !(ALL_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0) throw new Error(`TRAFFIC_DATA_PLANES: unknown kind(s) ${unknown.join(', ')}; expected ${ALL_KINDS.join(', ')}`);
  return Object.freeze(picked as DataPlaneKind[]);
}

export interface StartDataPlaneOptions {
  /** Port of the ADS server on 127.0.0.1. */
  readonly xdsPort: number;
  readonly nodeId: string;
  readonly nodeCluster: string;
  /** Extra text for every failure message of `waitFor` (e.g. what the control plane saw NACKed). */
  readonly context?: () => string | Promise<string>;
}

export interface DataPlane {
  readonly kind: DataPlaneKind;
  readonly nodeId: string;
  /** http://127.0.0.1:<admin port> */
  readonly adminUrl: string;
  /** The Envoy handle, for Envoy-only checks (config_dump, update_rejected); undefined for the TS proxy. */
  readonly envoy: EnvoyHandle | undefined;
  /** GET an admin path; throws on a non-2xx answer. */
  admin(path: string): Promise<string>;
  /** Waits until `/ready` answers 200 (LIVE: the first config is applied and warmed). */
  ready(timeoutMs?: number): Promise<void>;
  /** A counter or gauge by its exact Envoy-style name (`http.edge.downstream_cx_total`); undefined when absent. */
  stat(name: string): Promise<number | undefined>;
  /** Polls `probe` with a deadline; a timeout's message carries the log tail and `context`. */
  waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, opts: WaitOptions): Promise<T>;
  /** The last `lines` lines of the data plane's log. */
  logTail(lines?: number): Promise<string>;
  /** Stops the process (SIGTERM, then SIGKILL) and removes its temp files. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startDataPlane(kind: DataPlaneKind, opts: StartDataPlaneOptions): Promise<DataPlane> {
  const delta = isDelta(kind);
  const proc = dataPlaneProgram(kind) === 'envoy' ? await envoyProcess(opts, delta) : await tsProxyProcess(opts, delta, proxyConcurrency(kind));
  const admin = async (path: string): Promise<string> => {
    const res = await fetch(`${proc.adminUrl}${path}`);
    const body = await res.text();
    if (!res.ok) throw new Error(`${kind} admin ${path}: HTTP ${res.status}: ${body.slice(0, 200)}`);
    return body;
  };
  const waitFor: DataPlane['waitFor'] = (probe, waitOpts) =>
    waitUntil(probe, {
      ...waitOpts,
      what: `${waitOpts.what} [${kind}]`,
      context: async () =>
        [waitOpts.context ? await waitOpts.context() : '', opts.context ? await opts.context() : '', await proc.logTail()].filter((s) => s !== '').join('\n'),
    });
  return {
    kind,
    nodeId: opts.nodeId,
    adminUrl: proc.adminUrl,
    envoy: proc.envoy,
    admin,
    ready: async (timeoutMs = 20_000) => {
      await waitFor(
        async () => {
          proc.checkAlive();
          const res = await fetch(`${proc.adminUrl}/ready`);
          await res.arrayBuffer();
          return res.status === 200;
        },
        { what: `${kind} /ready to answer 200 LIVE`, timeoutMs },
      );
    },
    stat: async (name) => {
      // JSON, not the text format: one parser for both kinds, and names may contain ':' or '.'.
      const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const parsed = JSON.parse(await admin(`/stats?format=json&filter=${encodeURIComponent(`^${escaped}$`)}`)) as {
        stats?: Array<{ name?: string; value?: number }>;
      };
      return parsed.stats?.find((s) => s.name === name)?.value;
    },
    waitFor,
    logTail: proc.logTail,
    stop: proc.stop,
  };
}

/** What startDataPlane needs from a started process, whichever kind. */
interface Process {
  readonly adminUrl: string;
  readonly envoy: EnvoyHandle | undefined;
  /** Throws GiveUp when the process has exited (ends a wait at once). */
  checkAlive(): void;
  logTail(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

async function envoyProcess(opts: StartDataPlaneOptions, delta: boolean): Promise<Process> {
  const envoy = await startEnvoy({ xdsPort: opts.xdsPort, nodeId: opts.nodeId, nodeCluster: opts.nodeCluster, apiType: delta ? 'DELTA_GRPC' : 'GRPC' });
  return {
    adminUrl: envoy.adminUrl,
    envoy,
    checkAlive: () => undefined, // envoy.waitFor's probes see a dead Envoy as refused admin calls
    logTail: (lines) => envoy.logTail(lines),
    stop: () => envoy.stop(),
  };
}

/** dist/src/cli.js, next to this compiled file's dist/test/support/. */
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

async function tsProxyProcess(opts: StartDataPlaneOptions, delta: boolean, concurrency: number): Promise<Process> {
  const dir = await makeTempDir(`ts-proxy-${opts.nodeId}`);
  const logFile = join(dir.path, 'proxy.log');
  // Delta is chosen the way users choose it (and Envoy does): the bootstrap's ads_config.api_type.
  let identity = ['--xds', `127.0.0.1:${opts.xdsPort}`, '--node-id', opts.nodeId, '--node-cluster', opts.nodeCluster];
  if (delta) {
    const bootstrapFile = join(dir.path, 'bootstrap.json');
    await writeFile(
      bootstrapFile,
      JSON.stringify(adsBootstrap({ xdsPort: opts.xdsPort, nodeId: opts.nodeId, nodeCluster: opts.nodeCluster, apiType: 'DELTA_GRPC' })),
    );
    identity = ['--bootstrap', bootstrapFile];
  }
  const fd = openSync(logFile, 'a');
  const child: ChildProcess = spawn(
    process.execPath,
    [
      CLI,
      'proxy',
      ...identity,
      '--admin-port',
      '0',
      // Same short drain as the test Envoy (--drain-time-s 1), so stop() is quick.
      '--drain-time-s',
      '1',
      // Explicit: the default is one worker per core.
      '--concurrency',
      String(concurrency),
      '--log-level',
      'info',
    ],
    { stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const isExited = (): boolean => child.exitCode !== null || child.signalCode !== null;

  const logTail = async (lines = 40): Promise<string> => {
    const text = await readFile(logFile, 'utf8').catch(() => '');
    return `--- last ${lines} lines of ${logFile} ---\n${text
      .split('\n')
      .slice(-lines - 1)
      .join('\n')}`;
  };
  const checkAlive = (): void => {
    if (spawnError) throw new GiveUp(`could not start ${CLI}: ${spawnError.message}`);
    if (isExited()) throw new GiveUp(`consul-xds proxy exited (code ${child.exitCode}, signal ${child.signalCode})`);
  };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (!isExited()) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    }
    await dir.remove();
  };

  try {
    // The CLI prints its admin URL once the proxy runs: `...; admin http://127.0.0.1:PORT/ready`.
    const adminUrl = await waitUntil(
      async () => {
        checkAlive();
        const m = /admin (http:\/\/[^/\s]+)\/ready/.exec(await readFile(logFile, 'utf8').catch(() => ''));
        return m?.[1];
      },
      { what: `consul-xds proxy (node ${opts.nodeId}) to print its admin address`, timeoutMs: 20_000, context: () => logTail() },
    );
    return { adminUrl, envoy: undefined, checkAlive, logTail, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The control plane's record of one node: its NACKs and the versions it ACKed. */
export interface NodeWatch {
  readonly nacks: readonly NackEvent[];
  /** Version of `type` the node ACKed last (undefined before the first ACK). */
  acked(type: TypeShort): string | undefined;
  /** Every subscribed type ACKed at the cache's current version, nothing pending, nothing NACKed. */
  upToDate(): boolean;
  /** "no NACK", or each NACK with type, version and message: for failure messages. */
  describe(): string;
  close(): void;
}

/** Starts recording what `nodeId` ACKs and NACKs on `registry` (call before the data plane connects). */
export function watchNode(registry: StreamRegistry, nodeId: string): NodeWatch {
  const nacks: NackEvent[] = [];
  const onNack = (e: NackEvent): void => {
    if (e.nodeId === nodeId) nacks.push(e);
  };
  registry.on('nack', onNack);
  return {
    nacks,
    acked: (type) => registry.nodeStatus(nodeId)?.types[type]?.ackedVersion,
    upToDate: () => registry.nodeStatus(nodeId)?.upToDate === true,
    describe: () =>
      nacks.length === 0
        ? `node ${nodeId}: no NACK`
        : `node ${nodeId} NACKed:\n${nacks.map((n) => `  ${n.type} version ${n.version}: ${n.message}`).join('\n')}`,
    close: () => {
      registry.off('nack', onNack);
    },
  };
}

/** The data plane accepted every update: no NACK seen by the control plane, and for Envoy every update_rejected counter at 0. */
export async function assertNoRejectedUpdate(dp: DataPlane, node: NodeWatch): Promise<void> {
  assert.equal(node.nacks.length, 0, node.describe());
  if (!dp.envoy) return;
  const stats = await dp.envoy.stats('update_rejected$');
  assert.ok(stats.size > 0, 'Envoy reports update_rejected counters');
  assert.deepEqual(
    [...stats].filter(([, n]) => n > 0),
    [],
    'update_rejected counters are all 0',
  );
}
