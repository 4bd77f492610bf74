/**
 * The cluster keys of seeds 002 and 003, each as traffic through every data plane (real Envoy and
 * our TS proxy, see test/support/dataplanes.ts): YAML file -> `serve()` -> ADS -> data plane ->
 * local upstreams on 127.0.0.1. One control plane and one data plane per kind; one virtual host
 * (domain) per scenario:
 *  - `discovery: strict-dns` over two `localhost:<port>` names balances over both; `logical-dns`
 *    reaches its one name;
 *  - `max-concurrent-streams: 2` on an HTTP/2 cluster: 8 requests in flight at once open at
 *    least 8 / 2 connections and never put more than 2 streams on one (seed 002's case);
 *    `max-requests-per-connection: 2`: 6 requests in a row use at least 3 connections;
 *  - `circuit-breakers: { max-requests: 2 }` in front of a slow upstream: never more than 2 in
 *    flight at the upstream, the rest answered 503 and counted as overflow;
 *  - `outlier-detection: { consecutive-5xx: 3 }`: a host answering 500 is ejected, its healthy
 *    peer takes all traffic;
 *  - the only instance DRAINING gets traffic with the default panic threshold (Envoy's panic;
 *    the TS proxy now does the same), none with `healthy-panic-threshold: 0` (503); the same
 *    for the only instance UNHEALTHY;
 *  - `hash-policy` on `ring-hash`: every request of one user (header, or cookie) reaches the same
 *    upstream, while the users spread over all of them;
 *  - no NACK from either data plane; Envoy's update_rejected counters stay 0.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { assertNoRejectedUpdate, DATA_PLANES, startDataPlane, watchNode, type DataPlane, type DataPlaneKind, type NodeWatch } from '../support/dataplanes.js';
import { listenHttp, startUpstream, UPSTREAM_HEADER, type Upstream } from '../support/upstreams.js';
import { send as sendOne, sendMany, type Tally } from '../support/traffic.js';
import { freePort, makeTempDir } from '../support/tmp.js';

/** Requests in flight at once through the HTTP/2 cluster limited to 2 streams per connection. */
const STREAMS_IN_FLIGHT = 8;
const STREAM_LIMIT = 2;
/** Requests in a row through the cluster limited to 2 requests per connection. */
const RECYCLE_N = 6;
const REQUESTS_PER_CONNECTION = 2;
const BREAKER_MAX_REQUESTS = 2;

interface Ports {
  readonly listener: number;
  readonly dnsA: number;
  readonly dnsB: number;
  readonly logical: number;
  readonly h2: number;
  readonly slow: number;
  readonly good: number;
  readonly bad: number;
  readonly drain: number;
  readonly sticky: readonly number[];
}

function configYaml(p: Ports): string {
  const vhost = (name: string, cluster = name): string => `  ${name}: { domain: ["${name}.test"], cluster: { ${cluster}: { prefix: ["/"] } } }`;
  const at = (port: number, extra = ''): string => `{ address: "127.0.0.1", port: ${port}${extra} }`;
  return `# written by test/integration/traffic-cluster-options.test.ts
listener:
  edge: { address: "127.0.0.1", port: ${p.listener} }
virtual-hosts:
${['dns', 'logical', 'streams', 'recycle', 'breaker', 'outlier', 'drain-default', 'drain-off', 'unhealthy-off', 'sticky', 'sticky-cookie'].map((n) => vhost(n)).join('\n')}
cluster:
  loadbalancer:
    dns: { discovery: strict-dns, hosts: ["localhost:${p.dnsA}", "localhost:${p.dnsB}"], dns-lookup-family: v4-only, dns-refresh-rate: 0.5 }
    logical: { discovery: logical-dns, hosts: ["localhost:${p.logical}"], dns-lookup-family: v4-only }
    streams: { upstream-protocol: http2, max-concurrent-streams: ${STREAM_LIMIT} }
    recycle: { upstream-protocol: http2, max-requests-per-connection: ${REQUESTS_PER_CONNECTION} }
    breaker: { circuit-breakers: { max-requests: ${BREAKER_MAX_REQUESTS}, max-retries: 0 } }
    outlier: { outlier-detection: { consecutive-5xx: 3, interval: 10, base-ejection-time: 60, max-ejection-percent: 100 } }
    drain-default: {}
    drain-off: { healthy-panic-threshold: 0 }
    unhealthy-off: { healthy-panic-threshold: 0 }
    sticky: { lb-policy: ring-hash, hash-policy: [{ header: x-user }] }
    sticky-cookie: { lb-policy: ring-hash, hash-policy: [{ cookie: { name: session } }] }
endpoint:
  eds:
    streams: { static: [${at(p.h2)}] }
    recycle: { static: [${at(p.h2)}] }
    breaker: { static: [${at(p.slow)}] }
    outlier: { static: [${at(p.good)}, ${at(p.bad)}] }
    drain-default: { static: [${at(p.drain, ', health: draining')}] }
    drain-off: { static: [${at(p.drain, ', health: draining')}] }
    unhealthy-off: { static: [${at(p.drain, ', health: unhealthy')}] }
    sticky: { static: [${p.sticky.map((port) => at(port)).join(', ')}] }
    sticky-cookie: { static: [${p.sticky.map((port) => at(port)).join(', ')}] }
`;
}

/** An h2c upstream that counts its connections and the streams open on each, and can hold answers. */
interface H2Upstream {
  readonly port: number;
  /** Connections accepted since start. */
  readonly sessions: number;
  /** Most streams open at once on one connection, since the last reset. */
  readonly maxPerSession: number;
  /** Answers wait until `count` streams are open (or `timeoutMs` passed); 0 answers at once. */
  holdUntilOpen(count: number, timeoutMs: number): void;
  /** The last hold ended because `count` streams were open at once (not by its timeout). */
  readonly reachedHold: boolean;
  reset(): void;
  close(): Promise<void>;
}

async function startH2Upstream(name: string): Promise<H2Upstream> {
  let sessions = 0;
  let maxPerSession = 0;
  let open = 0;
  let holdFor = 0;
  let waiting: Array<() => void> = [];
  let holdTimer: NodeJS.Timeout | undefined;
  let reachedHold = false;
  const releaseAll = (): void => {
    clearTimeout(holdTimer);
    holdTimer = undefined;
    for (const w of waiting.splice(0)) w();
  };
  const server = http2.createServer();
  const perSession = new Map<http2.Http2Session, number>();
  server.on('session', (s) => {
    sessions++;
    perSession.set(s, 0);
    s.on('close', () => perSession.delete(s));
  });
  server.on('stream', (stream) => {
    const session = stream.session;
    if (!session) return;
    const now = (perSession.get(session) ?? 0) + 1;
    perSession.set(session, now);
    maxPerSession = Math.max(maxPerSession, now);
    open++;
    const answer = (): void => {
      if (!stream.destroyed) {
        stream.respond({ ':status': 200, [UPSTREAM_HEADER]: name });
        stream.end(JSON.stringify({ upstream: name }));
      }
    };
    stream.on('close', () => {
      open--;
      perSession.set(session, (perSession.get(session) ?? 1) - 1);
    });
    stream.resume();
    if (holdFor === 0) return answer();
    waiting.push(answer);
    if (open >= holdFor) {
      reachedHold = true;
      releaseAll();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    get sessions() {
      return sessions;
    },
    get maxPerSession() {
      return maxPerSession;
    },
    get reachedHold() {
      return reachedHold;
    },
    holdUntilOpen(count, timeoutMs) {
      holdFor = count;
      if (count > 0) reachedHold = false;
      if (count > 0) holdTimer = setTimeout(releaseAll, timeoutMs);
      else releaseAll();
    },
    reset() {
      maxPerSession = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        releaseAll();
        waiting = [];
        for (const s of perSession.keys()) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An HTTP/1.1 upstream answering after `delayMs`, recording the most requests it had in flight. */
async function startSlow(
  name: string,
  delayMs: number,
): Promise<{ port: number; readonly maxInFlight: number; readonly served: number; close(): Promise<void> }> {
  let inFlight = 0;
  let maxInFlight = 0;
  let served = 0;
  const { port, close } = await listenHttp((req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    req.resume();
    setTimeout(() => {
      inFlight--;
      served++;
      res.setHeader(UPSTREAM_HEADER, name);
      res.end(JSON.stringify({ upstream: name }));
    }, delayMs);
  });
  return {
    port,
    get maxInFlight() {
      return maxInFlight;
    },
    get served() {
      return served;
    },
    close,
  };
}

/** An upstream answering every request with `status`. */
async function startFixed(name: string, status: number): Promise<{ port: number; close(): Promise<void> }> {
  return listenHttp((req, res) => {
    req.resume();
    res.statusCode = status;
    res.setHeader(UPSTREAM_HEADER, name);
    res.end(name);
  });
}

function suite(kind: DataPlaneKind): void {
  describe(`cluster options through ${kind}`, () => {
    const nodeId = `traffic-cluster-options-${kind}`;
    let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
    let app: RunningApp | undefined;
    let dp: DataPlane | undefined;
    let node: NodeWatch | undefined;
    let ports: Ports;
    const plain: Upstream[] = [];
    let h2: H2Upstream | undefined;
    let slow: Awaited<ReturnType<typeof startSlow>> | undefined;
    const fixed: Array<{ close(): Promise<void> }> = [];

    const plane = (): DataPlane => {
      assert.ok(dp, `${kind} not started`);
      return dp;
    };
    const send = (domain: string, count: number, concurrency?: number): Promise<Tally> =>
      sendMany({ port: ports.listener, host: `${domain}.test`, path: '/', count, ...(concurrency ? { concurrency } : {}) });

    before(async () => {
      dir = await makeTempDir(`traffic-cluster-options-${kind}`);
      const names = ['dns-a', 'dns-b', 'logical', 'drain', 'sticky-a', 'sticky-b', 'sticky-c'];
      plain.push(...(await Promise.all(names.map((n) => startUpstream(n)))));
      const port = (n: string): number => plain.find((u) => u.name === n)?.port ?? 0;
      h2 = await startH2Upstream('h2');
      slow = await startSlow('slow', 500);
      const good = await startFixed('good', 200);
      const bad = await startFixed('bad', 500);
      fixed.push(good, bad);
      ports = {
        listener: await freePort(),
        dnsA: port('dns-a'),
        dnsB: port('dns-b'),
        logical: port('logical'),
        h2: h2.port,
        slow: slow.port,
        good: good.port,
        bad: bad.port,
        drain: port('drain'),
        sticky: ['sticky-a', 'sticky-b', 'sticky-c'].map(port),
      };
      const configFile = join(dir.path, 'consul-xds.yaml');
      await writeFile(configFile, configYaml(ports));
      app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
      const watching = watchNode(app.xdsServer.registry, nodeId);
      node = watching;
      dp = await startDataPlane(kind, { xdsPort: app.xdsPort, nodeId, nodeCluster: 'web', context: () => watching.describe() });
      await dp.ready();
    });

    after(async () => {
      node?.close();
      await dp?.stop();
      await app?.close();
      await Promise.all([...plain.map((u) => u.close()), h2?.close(), slow?.close(), ...fixed.map((f) => f.close())]);
      await dir?.remove();
    });

    it('strict-dns: both localhost names resolved and balanced; logical-dns reaches its one name', async () => {
      // The names resolve after the data plane is ready: wait for both to serve.
      await plane().waitFor(
        async () => {
          const t = await send('dns', 20);
          return t.count('dns-a') > 0 && t.count('dns-b') > 0;
        },
        { what: 'both strict-dns hosts (localhost) to get traffic', timeoutMs: 15_000, intervalMs: 200 },
      );
      const t = await send('dns', 100);
      assert.equal(t.byStatus.get(200), 100, t.describe());
      // Round robin over the two resolved hosts: an even share (+-1 for the starting point, +-2 for 2 connections).
      assert.ok(Math.abs(t.count('dns-a') - t.count('dns-b')) <= 4, `even round robin: ${t.describe()}`);
      const l = await plane().waitFor(
        async () => {
          const r = await send('logical', 10);
          return r.count('logical') === 10 && r;
        },
        { what: 'the logical-dns host to serve', timeoutMs: 15_000, intervalMs: 200 },
      );
      assert.equal(l.byStatus.get(200), 10, l.describe());
    });

    it(`max-concurrent-streams ${STREAM_LIMIT}: ${STREAMS_IN_FLIGHT} requests in flight open >= ${STREAMS_IN_FLIGHT / STREAM_LIMIT} connections, <= ${STREAM_LIMIT} streams each`, async (t) => {
      const up = h2;
      assert.ok(up);
      // Warm the route and its first connection, then hold answers until all 8 are open at once.
      assert.equal((await send('streams', 1)).byStatus.get(200), 1);
      up.reset();
      const before = up.sessions;
      up.holdUntilOpen(STREAMS_IN_FLIGHT, 4_000);
      try {
        const replies = await send('streams', STREAMS_IN_FLIGHT, STREAMS_IN_FLIGHT);
        assert.equal(replies.byStatus.get(200), STREAMS_IN_FLIGHT, replies.describe());
      } finally {
        up.holdUntilOpen(0, 0);
      }
      // All 8 were open at the upstream at once, at most 2 on a connection: so on at least 4.
      assert.ok(up.reachedHold, `the upstream saw ${STREAMS_IN_FLIGHT} streams open at once`);
      assert.ok(up.maxPerSession <= STREAM_LIMIT, `at most ${STREAM_LIMIT} streams on one connection, saw ${up.maxPerSession}`);
      const opened = up.sessions - before;
      t.diagnostic(`${STREAMS_IN_FLIGHT} streams in flight: ${opened} new upstream connections, at most ${up.maxPerSession} streams on one`);
      // The warm-up connection may carry 2 of them: at least 8/2 - 1 new ones.
      assert.ok(opened >= STREAMS_IN_FLIGHT / STREAM_LIMIT - 1, `${opened} new upstream connections for ${STREAMS_IN_FLIGHT} concurrent streams`);
      assert.equal(up.maxPerSession, STREAM_LIMIT, 'connections were filled up to the limit');
    });

    it(`max-requests-per-connection ${REQUESTS_PER_CONNECTION}: ${RECYCLE_N} requests in a row use >= ${RECYCLE_N / REQUESTS_PER_CONNECTION} connections`, async (t) => {
      const up = h2;
      assert.ok(up);
      const before = up.sessions;
      const replies = await send('recycle', RECYCLE_N, 1);
      assert.equal(replies.byStatus.get(200), RECYCLE_N, replies.describe());
      const opened = up.sessions - before;
      t.diagnostic(`${RECYCLE_N} requests in a row: ${opened} upstream connections`);
      assert.ok(opened >= RECYCLE_N / REQUESTS_PER_CONNECTION, `${opened} upstream connections for ${RECYCLE_N} requests`);
    });

    // With workers (ts-proxy-c2) each enforces its share (1 of 2): the upstream still never sees more
    // than 2, and each worker takes at least one of the 10 connections, so at least 2 are answered 200.
    it(`circuit-breakers max-requests ${BREAKER_MAX_REQUESTS}: a slow upstream never sees more; the overflow is answered 503 and counted`, async (t) => {
      const s = slow;
      assert.ok(s);
      const tally = await send('breaker', 10, 10);
      t.diagnostic(`10 concurrent requests: ${tally.describe()}, at most ${s.maxInFlight} in flight at the upstream`);
      assert.ok(s.maxInFlight <= BREAKER_MAX_REQUESTS, `upstream saw ${s.maxInFlight} requests at once`);
      assert.ok((tally.byStatus.get(200) ?? 0) >= BREAKER_MAX_REQUESTS, tally.describe());
      assert.ok((tally.byStatus.get(503) ?? 0) >= 1, `some requests overflowed: ${tally.describe()}`);
      assert.equal((tally.byStatus.get(200) ?? 0) + (tally.byStatus.get(503) ?? 0), 10, tally.describe());
      assert.equal(tally.count('slow'), s.served, 'every 200 came from the upstream');
      // Envoy 1.40 counts max_requests refusals as upstream_rq_active_overflow.
      assert.equal(await plane().stat('cluster.breaker.upstream_rq_active_overflow'), tally.byStatus.get(503), 'each 503 counted as overflow');
      assert.equal(await plane().stat('cluster.breaker.upstream_rq_pending_overflow'), 0);
    });

    it('outlier-detection consecutive-5xx 3: the host answering 500 is ejected; its peer takes all traffic', async () => {
      const t = await plane().waitFor(
        async () => {
          const r = await send('outlier', 20, 1);
          return r.count('good') === 20 && r;
        },
        { what: 'the failing host to be ejected', timeoutMs: 15_000, intervalMs: 50 },
      );
      assert.equal(t.byStatus.get(200), 20, t.describe());
      const ejected = await plane().stat('cluster.outlier.outlier_detection.ejections_enforced_consecutive_5xx');
      assert.ok((ejected ?? 0) >= 1, `ejections_enforced_consecutive_5xx = ${ejected}`);
    });

    it('the only instance DRAINING: panic sends it traffic at the default threshold; healthy-panic-threshold 0 sends none', async () => {
      const d = await send('drain-default', 20);
      assert.equal(d.count('drain'), 20, `default threshold (panic): ${d.describe()}`);
      const off = await send('drain-off', 20);
      assert.equal(off.byStatus.get(503), 20, `threshold 0: ${off.describe()}`);
      assert.equal(off.count('drain'), 0, off.describe());
      const unhealthy = await send('unhealthy-off', 20);
      assert.equal(unhealthy.byStatus.get(503), 20, `threshold 0, only instance UNHEALTHY: ${unhealthy.describe()}`);
    });

    for (const [domain, header] of [
      ['sticky', (user: string) => ({ 'x-user': user })],
      ['sticky-cookie', (user: string) => ({ cookie: `theme=dark; session=${user}` })],
    ] as const) {
      it(`hash-policy (${domain}): every request of a user reaches one upstream; users spread over all three`, async () => {
        const seen = new Set<string>();
        for (let u = 0; u < 24; u++) {
          const user = `user-${u}`;
          const replies = await Promise.all(
            Array.from({ length: 5 }, () => sendOne({ port: ports.listener, host: `${domain}.test`, path: '/', headers: header(user) })),
          );
          const upstreams = new Set(replies.map((r) => `${r.status} ${r.upstream}`));
          assert.equal(upstreams.size, 1, `${user}: ${[...upstreams].join(', ')}`);
          seen.add(replies[0]?.upstream ?? '');
        }
        assert.deepEqual([...seen].sort(), ['sticky-a', 'sticky-b', 'sticky-c'], 'the users spread over every upstream');
      });
    }

    it('the data plane NACKed nothing; Envoy rejected no update', async () => {
      assert.ok(node, 'node watch not started');
      await assertNoRejectedUpdate(plane(), node);
    });
  });
}

for (const kind of DATA_PLANES) suite(kind);
