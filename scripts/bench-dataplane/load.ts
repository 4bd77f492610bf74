/**
 * The load generators, each run as its own process so it never shares an event loop with what it
 * measures. In: a target (127.0.0.1 and a port), a protocol, how many connections (HTTP/1.1) or
 * concurrent calls over one connection (gRPC), and a duration. Out: one LoadResult: completed
 * requests per second and latency percentiles in microseconds, plus failures.
 *
 * HTTP/1.1 keep-alive: wrk (Debian's package, installed into .cache by install-wrk.sh), one
 * thread, N connections, each with one request in flight; latency per request in microseconds.
 * gRPC unary: ghz (Go, installed into .cache by install-ghz.sh), one connection carrying N
 * concurrent calls (the seed 003 shape), one OS thread (--cpus 1). Both are closed loops: a
 * connection or worker sends its next request when the previous answer arrived; ghz can instead
 * hold a fixed rate (`rps`), so that data planes or runtimes are compared doing the same work per
 * second, whatever else the shared machine runs.
 */
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { ChildSet } from './children.js';
import { ECHO_CALL, HELPERS_DIR, PAYLOAD_JSON, PROTO_FILE } from './echo.js';

export type Protocol = 'http1' | 'grpc';

export const PROTOCOL_LABEL: Readonly<Record<Protocol, string>> = { http1: 'HTTP/1.1 keep-alive', grpc: 'gRPC unary' };

/** The path wrk asks for; the benchmark config routes the /h1 prefix to the HTTP/1.1 cluster. */
export const H1_PATH = '/h1/bench';

export interface LoadResult {
  readonly requests: number;
  readonly rps: number;
  readonly p50Us: number;
  readonly p99Us: number;
  /** Requests that failed (non-2xx, non-OK gRPC status, resets, timeouts). */
  readonly errors: number;
}

export interface LoadSpec {
  readonly protocol: Protocol;
  readonly port: number;
  /** HTTP/1.1: connections; gRPC: concurrent calls on one connection. */
  readonly concurrency: number;
  readonly durationS: number;
  /** gRPC only: calls started per second at most (ghz --rps); unset, as fast as answers come. */
  readonly rps?: number;
}

/** Paths of the two tools, installed on first use (each install script prints the path). */
export function installTools(protocols: readonly Protocol[]): { wrk?: string; ghz?: string } {
  const install = (script: string): string =>
    execFileSync('bash', [path.join(HELPERS_DIR, script)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 }).trim();
  return {
    ...(protocols.includes('http1') ? { wrk: process.env.WRK_BIN ?? install('install-wrk.sh') } : {}),
    ...(protocols.includes('grpc') ? { ghz: process.env.GHZ_BIN ?? install('install-ghz.sh') } : {}),
  };
}

/** Time past the run's duration before the load generator is killed and the cell fails. */
const GRACE_MS = 20_000;

export async function runLoad(children: ChildSet, tools: { wrk?: string; ghz?: string }, spec: LoadSpec): Promise<LoadResult> {
  return spec.protocol === 'http1' ? runWrk(children, need(tools.wrk, 'wrk'), spec) : runGhz(children, need(tools.ghz, 'ghz'), spec);
}

function need(bin: string | undefined, name: string): string {
  if (!bin) throw new Error(`${name} was not installed for this run`);
  return bin;
}

interface WrkJson {
  requests: number;
  durationUs: number;
  p50Us: number;
  p99Us: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
}

async function runWrk(children: ChildSet, wrk: string, spec: LoadSpec): Promise<LoadResult> {
  const args = [
    '-t1',
    `-c${spec.concurrency}`,
    `-d${spec.durationS}s`,
    '--timeout',
    '5s',
    '-s',
    path.join(HELPERS_DIR, 'wrk-report.lua'),
    `http://127.0.0.1:${spec.port}${H1_PATH}`,
  ];
  const r = await children.run(wrk, args, spec.durationS * 1000 + GRACE_MS);
  const line = r.stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (r.timedOut || !line) throw new Error(`wrk ${args.join(' ')}: ${r.timedOut ? 'timed out' : `no result (code ${r.code})`}\n${r.stdout}${r.stderr}`);
  const j = JSON.parse(line.slice('WRK_JSON '.length)) as WrkJson;
  const e = j.errors;
  return {
    requests: j.requests,
    rps: j.requests / (j.durationUs / 1e6),
    p50Us: j.p50Us,
    p99Us: j.p99Us,
    errors: e.connect + e.read + e.write + e.status + e.timeout,
  };
}

interface GhzJson {
  count: number;
  total: number;
  rps: number;
  latencyDistribution: Array<{ percentage: number; latency: number }> | null;
  statusCodeDistribution: Record<string, number> | null;
  errorDistribution: Record<string, number> | null;
}

/** ghz's arguments for one run: one connection, `concurrency` calls in flight, a summary in JSON. */
export function ghzArgs(spec: LoadSpec): string[] {
  return [
    '--insecure',
    '--proto',
    PROTO_FILE,
    '--call',
    ECHO_CALL,
    '--data',
    PAYLOAD_JSON,
    '--connections',
    '1',
    '--concurrency',
    String(spec.concurrency),
    ...(spec.rps !== undefined ? ['--rps', String(spec.rps)] : []),
    '--duration',
    `${spec.durationS}s`,
    // Calls still in flight when the time is up are neither counted nor errors.
    '--duration-stop',
    'ignore',
    '--cpus',
    '1',
    '--format',
    'json',
    `127.0.0.1:${spec.port}`,
  ];
}

async function runGhz(children: ChildSet, ghz: string, spec: LoadSpec): Promise<LoadResult> {
  const args = ghzArgs(spec);
  const r = await children.run(ghz, args, spec.durationS * 1000 + GRACE_MS);
  let j: GhzJson;
  try {
    // ghz appends every call's record ("details", tens of MB at full rate): parse the summary only.
    const cut = r.stdout.indexOf(',"details":');
    j = JSON.parse(cut < 0 ? r.stdout : `${r.stdout.slice(0, cut)}}`) as GhzJson;
  } catch {
    throw new Error(
      `ghz ${args.join(' ')}: ${r.timedOut ? 'timed out' : `no JSON result (code ${r.code})`}\n${r.stdout.slice(0, 2000)}${r.stderr.slice(0, 2000)}`,
    );
  }
  const pct = (p: number): number => {
    const hit = (j.latencyDistribution ?? []).find((d) => d.percentage === p);
    return hit ? hit.latency / 1000 : NaN; // ns -> us
  };
  const statuses = j.statusCodeDistribution ?? {};
  const ok = statuses.OK ?? 0;
  const failedStatuses = Object.entries(statuses).reduce((n, [code, c]) => (code === 'OK' ? n : n + c), 0);
  const transport = Object.values(j.errorDistribution ?? {}).reduce((n, c) => n + c, 0);
  return {
    requests: ok,
    rps: ok / (j.total / 1e9),
    p50Us: pct(50),
    p99Us: pct(99),
    errors: Math.max(failedStatuses, transport),
  };
}
