/**
 * `consul-xds proxy --concurrency 2` (src/proxy/workers/) through the real CLI, against `serve()`:
 *  - the config reaches both workers: connections spread over them, and each worker has its own
 *    upstream pool, so one request at a time over several downstream connections opens two
 *    upstream connections, not one (seed 002's point about Envoy's workers); /stats sums them;
 *  - health checks run once per cluster, not once per worker, and a host failing its check
 *    leaves rotation in both workers;
 *  - a worker killed with SIGKILL loses its own connections only; it is started again with the
 *    config, /server_info and server.worker_restarts say so, and new connections are all served;
 *  - a primary killed outright takes its workers with it (they exit when its IPC channel closes);
 *  - SIGTERM drains every worker: requests in flight on both finish, then the process exits 0;
 *  - circuit breakers: each worker enforces its share of max-requests 2 (1 each): the upstream
 *    never sees more than 2 at once, one request on each of two connections (two workers) both
 *    pass, two at once on one HTTP/2 connection (one worker) overflow with 503 (Envoy's shared
 *    count would pass both: the difference docs/dataplane.md describes).
 * Every wait here has a deadline, and each proxy runs in its own process group, killed whole at the end.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import http2 from 'node:http2';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { listenHttp, startUpstream, type Upstream } from '../support/upstreams.js';
import { freePort, GiveUp, makeTempDir, waitUntil } from '../support/tmp.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
/** Downstream connections each test opens (the primary hands them to the workers in turn). */
const CONNS = 8;
/** Longest a request, an admin call, or the proxy's exit may take: no wait in this file is unbounded. */
const WAIT_MS = 10_000;

interface Proc {
  readonly child: ChildProcess;
  readonly admin: number;
  output(): string;
  readonly exit: Promise<number | null>;
}

/** GET `path` on `port` over `agent`; resolves with the status, rejects on a reset or after WAIT_MS (code 'TIMEOUT'). */
function get(port: number, path: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers: { host: 'x' }, timeout: WAIT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(Object.assign(new Error(`GET ${path}: no response in ${WAIT_MS} ms`), { code: 'TIMEOUT' })));
    req.end();
  });
}

/** One keep-alive connection per agent. */
function agents(n: number): Agent[] {
  return Array.from({ length: n }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
}

/** GET `path` as one stream of `session`; resolves with the status, rejects on a reset or after WAIT_MS. */
function h2get(session: http2.ClientHttp2Session, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const st = session.request({ ':path': path, ':authority': 'x' });
    let status = 0;
    st.setTimeout(WAIT_MS, () => st.close(http2.constants.NGHTTP2_CANCEL));
    st.on('response', (h) => (status = Number(h[':status'])));
    st.on('error', reject);
    st.on('close', () => (status === 0 ? reject(new Error(`h2 ${path}: no response in ${WAIT_MS} ms`)) : resolve(status)));
    st.resume();
    st.end();
  });
}

async function statOf(admin: number, name: string): Promise<number | undefined> {
  const body = (await (await fetch(`http://127.0.0.1:${admin}/stats?format=json`, { signal: AbortSignal.timeout(WAIT_MS) })).json()) as {
    stats: Array<{ name: string; value: number }>;
  };
  return body.stats.find((s) => s.name === name)?.value;
}

interface WorkerInfo {
  index: number;
  pid: number;
  up: boolean;
  restarts: number;
}

async function workers(admin: number): Promise<WorkerInfo[]> {
  return ((await (await fetch(`http://127.0.0.1:${admin}/server_info`, { signal: AbortSignal.timeout(WAIT_MS) })).json()) as { workers: WorkerInfo[] }).workers;
}

describe('consul-xds proxy --concurrency 2', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let app: RunningApp | undefined;
  let a: Upstream | undefined;
  let b: Upstream | undefined;
  let slow: Awaited<ReturnType<typeof listenHttp>> | undefined;
  /** Source ports of the connections the slow/pool upstream saw. */
  const upstreamConns = new Set<number>();
  let poolRequests = 0;
  /** Requests the slow/pool upstream holds now, and the most it held at once since the last reset. */
  let slowInFlight = 0;
  let slowMaxInFlight = 0;
  let listener = 0;
  const procs: Proc[] = [];

  before(async () => {
    dir = await makeTempDir('dataplane-concurrency');
    [a, b] = await Promise.all([startUpstream('web-a'), startUpstream('web-b')]);
    slow = await listenHttp((req, res) => {
      upstreamConns.add(req.socket.remotePort ?? 0);
      poolRequests++;
      slowMaxInFlight = Math.max(slowMaxInFlight, ++slowInFlight);
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
      setTimeout(() => {
        slowInFlight--;
        res.end('ok');
      }, ms).unref();
    });
    listener = await freePort();
    const configFile = join(dir.path, 'c.yaml');
    await writeFile(
      configFile,
      `listener:
  edge: { address: "127.0.0.1", port: ${listener} }
route: { domain: ["*"], cluster: { capped: { prefix: ["/capped"] }, pool: { prefix: ["/pool"] }, web: { prefix: ["/"] } } }
cluster:
  loadbalancer:
    capped: { circuit-breakers: { max-requests: 2, max-retries: 0 } }
    pool: {}
    web:
      health-check: { type: "http", value: "/health_check", expected: ["200"], timeout: 1, interval: 0.2, no-traffic-interval: 0.2, healthy: 1, unhealthy: 1 }
endpoint:
  eds:
    capped: { static: [{ address: "127.0.0.1", port: ${slow.port} }] }
    pool: { static: [{ address: "127.0.0.1", port: ${slow.port} }] }
    web: { static: [{ address: "127.0.0.1", port: ${a.port} }, { address: "127.0.0.1", port: ${b.port} }] }
`,
    );
    app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
  });

  after(async () => {
    for (const p of procs) killGroup(p);
    await app?.close();
    await a?.close();
    await b?.close();
    await slow?.close();
    await dir?.remove();
  });

  async function startLive(nodeId: string, concurrency: number): Promise<Proc> {
    const admin = await freePort();
    const child = spawn(
      process.execPath,
      [CLI, 'proxy', '--xds', `127.0.0.1:${app?.xdsPort}`, '--node-id', nodeId, '--node-cluster', 'edge', '--admin-port', String(admin)].concat([
        '--drain-time-s',
        '5',
        '--concurrency',
        String(concurrency),
        '--log-level',
        'warn',
      ]),
      // A process group of its own: killGroup() reaches the workers too, even when the primary is stuck.
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const p: Proc = { child, admin, output: () => out, exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
    procs.push(p);
    await waitUntil(
      async () => {
        if (child.exitCode !== null) throw new GiveUp(`proxy exited early: ${out}`);
        const r = await fetch(`http://127.0.0.1:${admin}/ready`, { signal: AbortSignal.timeout(WAIT_MS) }).catch(() => undefined);
        return (await r?.text())?.trim() === 'LIVE';
      },
      { what: 'the proxy to be LIVE', context: () => out },
    );
    return p;
  }

  /** SIGKILLs the proxy's process group (primary and workers); a no-op once all are gone. */
  function killGroup(p: Proc): void {
    try {
      process.kill(-(p.child.pid as number), 'SIGKILL');
    } catch {
      // ESRCH: the group is already gone.
    }
  }

  /** The proxy's exit code, or an error after `ms` (the whole group is killed then, so nothing is left running). */
  async function exitWithin(p: Proc, ms: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        killGroup(p);
        reject(new Error(`the proxy did not exit within ${ms} ms of SIGTERM; killed its process group\n${p.output()}`));
      }, ms);
    });
    try {
      const code = await Promise.race([p.exit, late]);
      // The primary waited for its workers, so none may be left once it is gone.
      assert.ok(!groupAlive(p), `a worker outlived its primary (node ${p.child.pid}'s group)\n${p.output()}`);
      return code;
    } finally {
      clearTimeout(timer);
      killGroup(p);
    }
  }

  /** True while any process of the proxy's group (its workers too) runs. */
  function groupAlive(p: Proc): boolean {
    try {
      process.kill(-(p.child.pid as number), 0);
      return true;
    } catch {
      return false;
    }
  }

  async function stop(p: Proc): Promise<void> {
    p.child.kill('SIGTERM');
    // Drain (5 s) plus the primary's wait for its workers (5 s) and a margin.
    assert.equal(await exitWithin(p, 15_000), 0, p.output());
  }

  it('spreads connections over both workers, each with its own upstream pool; /stats sums them', async () => {
    const p = await startLive('c2-pool', 2);
    try {
      assert.deepEqual(
        (await workers(p.admin)).map((w) => [w.index, w.up]),
        [
          [0, true],
          [1, true],
        ],
      );
      upstreamConns.clear();
      const ags = agents(CONNS);
      // One request at a time: a single process would reuse one upstream connection for all.
      for (const ag of ags) assert.equal(await get(listener, '/pool', ag), 200);
      for (const ag of ags) assert.equal(await get(listener, '/pool', ag), 200);
      for (const ag of ags) ag.destroy();
      assert.equal(upstreamConns.size, 2, `one upstream connection per worker, saw ${upstreamConns.size}`);
      assert.equal(await statOf(p.admin, 'cluster.pool.upstream_rq_total'), 2 * CONNS);
      assert.equal(await statOf(p.admin, 'cluster.pool.upstream_cx_total'), 2);
      assert.equal(await statOf(p.admin, 'http.edge.downstream_cx_total'), CONNS);
      // Config-wide gauges are counted once, not once per worker.
      assert.equal(await statOf(p.admin, 'cluster.web.membership_total'), 2);
      assert.equal(await statOf(p.admin, 'server.concurrency'), 2);
    } finally {
      await stop(p);
    }
  });

  it('health-checks each host once per interval, not once per worker; a failing host leaves both workers', async () => {
    const p = await startLive('c2-hc', 2);
    try {
      a?.reset();
      await new Promise((r) => setTimeout(r, 2_000));
      // interval 0.2 s over 2 s: about 10 checks per host; two checkers would make about 20.
      const checks = a?.healthChecks.length ?? 0;
      assert.ok(checks >= 4 && checks <= 14, `web-a health-checked ${checks} times in 2 s (expected about 10)`);
      a?.setHealthStatus(503);
      await waitUntil(async () => (await statOf(p.admin, 'cluster.web.membership_healthy')) === 1, { what: 'web-a to fail its check' });
      a?.reset();
      b?.reset();
      const ags = agents(CONNS);
      for (const ag of ags) assert.equal(await get(listener, '/', ag), 200);
      for (const ag of ags) ag.destroy();
      assert.equal(a?.requests.length, 0, 'no request reaches the failing host, in either worker');
      assert.equal(b?.requests.length, CONNS);
    } finally {
      a?.setHealthStatus(200);
      await stop(p);
    }
  });

  it('a killed worker loses its own connections only and is started again with the config', async () => {
    const p = await startLive('c2-crash', 2);
    try {
      const ags = agents(CONNS);
      for (const ag of ags) assert.equal(await get(listener, '/pool', ag), 200);
      const [, w1] = await workers(p.admin);
      assert.ok(w1);
      process.kill(w1.pid, 'SIGKILL');
      const outcomes = await Promise.all(
        ags.map((ag) =>
          get(listener, '/pool', ag).then(
            (s) => String(s),
            (err: NodeJS.ErrnoException) => err.code ?? 'error',
          ),
        ),
      );
      for (const ag of ags) ag.destroy();
      const lost = outcomes.filter((o) => o !== '200').length;
      // Handed out in turn, so about half the connections were the killed worker's.
      assert.ok(lost >= 1 && lost < CONNS, `connections lost: ${lost} of ${CONNS} (${outcomes.join(',')})`);
      const after = await waitUntil(
        async () => {
          const ws = await workers(p.admin);
          return ws[1]?.up && ws[1].pid !== w1.pid ? ws : undefined;
        },
        { what: 'worker 1 to be started again', context: () => p.output() },
      );
      assert.equal(after[1]?.restarts, 1);
      assert.equal(await statOf(p.admin, 'server.worker_restarts'), 1);
      // The new worker takes connections once it has bound the listener from the replayed config.
      upstreamConns.clear();
      await waitUntil(
        async () => {
          const fresh = agents(CONNS);
          const codes = await Promise.all(fresh.map((ag) => get(listener, '/pool', ag)));
          for (const ag of fresh) ag.destroy();
          assert.deepEqual(codes, Array(CONNS).fill(200), 'every new connection is served');
          return upstreamConns.size >= 2;
        },
        { what: 'both workers (the new one too) to serve new connections', context: () => p.output() },
      );
    } finally {
      await stop(p);
    }
  });

  it('the workers exit when their primary is killed (their IPC channel to it is gone)', async () => {
    const p = await startLive('c2-orphan', 2);
    const pids = (await workers(p.admin)).map((w) => w.pid);
    assert.equal(pids.length, 2);
    p.child.kill('SIGKILL');
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      await waitUntil(() => pids.every((pid) => !alive(pid)), {
        what: `workers ${pids.join(', ')} to exit after their primary was killed`,
        timeoutMs: WAIT_MS,
        context: () => `still running: ${pids.filter(alive).join(', ')}\n${p.output()}`,
      });
    } finally {
      killGroup(p);
    }
  });

  it('SIGTERM drains every worker: requests in flight on both finish, then exit 0', async () => {
    const p = await startLive('c2-drain', 2);
    const ags = agents(4);
    upstreamConns.clear();
    poolRequests = 0;
    const inFlight = ags.map((ag) => get(listener, '/pool?ms=1500', ag).then(String, (err: NodeJS.ErrnoException) => err.code ?? 'error'));
    // All four reached the upstream (a connection not yet accepted at SIGTERM is refused, as in one process).
    await waitUntil(() => poolRequests === 4 && upstreamConns.size >= 2, { what: 'requests in flight in both workers' });
    p.child.kill('SIGTERM');
    assert.deepEqual(await Promise.all(inFlight), ['200', '200', '200', '200']);
    for (const ag of ags) ag.destroy();
    assert.equal(await exitWithin(p, 15_000), 0, p.output());
  });

  it('circuit breakers: each worker enforces its share of max-requests 2; the total never exceeds 2, two at once in one worker overflow', async () => {
    const p = await startLive('c2-breaker', 2);
    let session: http2.ClientHttp2Session | undefined;
    try {
      // One request on each of two connections opened at once, nothing else connecting: the primary
      // hands the second to the worker it did not give the first, and 1 may pass in each.
      const two = agents(2);
      assert.deepEqual(await Promise.all(two.map((ag) => get(listener, '/capped?ms=1000', ag))), [200, 200]);
      for (const ag of two) ag.destroy();
      // Two at once on one HTTP/2 connection are one worker's: its share is 1, so the second overflows.
      session = http2.connect(`http://127.0.0.1:${listener}`);
      session.on('error', () => undefined);
      const statuses = await Promise.all([h2get(session, '/capped?ms=1000'), h2get(session, '/capped?ms=1000')]);
      assert.deepEqual(statuses.sort(), [200, 503]);
      assert.equal(await statOf(p.admin, 'cluster.capped.upstream_rq_active_overflow'), 1);
      // Many at once over many connections: the upstream never holds more than the configured 2.
      slowMaxInFlight = 0;
      const many = agents(CONNS);
      const codes = await Promise.all(many.map((ag) => get(listener, '/capped?ms=500', ag)));
      for (const ag of many) ag.destroy();
      assert.ok(slowMaxInFlight <= 2, `the upstream held ${slowMaxInFlight} requests at once`);
      assert.ok(codes.filter((c) => c === 200).length >= 2, `each worker passed at least one: ${codes.join(',')}`);
      assert.equal(codes.filter((c) => c !== 200 && c !== 503).length, 0, codes.join(','));
    } finally {
      session?.close();
      await stop(p);
    }
  });
});
