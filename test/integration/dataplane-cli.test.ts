/**
 * `consul-xds proxy` as a separate process (src/commands/proxy.ts run()), the way operators and
 * the benchmark start it: flags -> ADS to `serve()` -> /ready LIVE on the admin port -> traffic
 * through its listener -> SIGTERM ends it with exit code 0. SIGTERM drains: slow requests in
 * flight still get their 200 (HTTP/1.1 with `connection: close`, HTTP/2 after a GOAWAY), an open
 * TCP proxy connection keeps piping, new connections are refused (at --concurrency 1 and 2: none
 * made after the drain began is answered), /ready says DRAINING, and the
 * process exits when the last connection is done or at the --drain-time-s deadline, whichever is
 * first; a second SIGTERM ends it at once. --max-downstream-connections caps open connections
 * across the HTTP and the TCP listener: one over the cap is closed at accept, unserved, and
 * counted in listener.<addr>_<port>.downstream_global_cx_overflow; a closed connection frees its
 * place. Also: a usage error names the missing flags.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { listenHttp, startUpstream, type Upstream } from '../support/upstreams.js';
import { send } from '../support/traffic.js';
import { freePort, GiveUp, makeTempDir, waitUntil } from '../support/tmp.js';

const COMMAND = fileURLToPath(new URL('../../src/commands/proxy.js', import.meta.url));

/** Runs the command module's run(argv) in a child process (cli.ts registration aside). */
function spawnProxy(args: string[]): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', `const m = await import(${JSON.stringify(COMMAND)}); process.exitCode = await m.run(process.argv.slice(1));`, '--', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONSUL_XDS_LOG_LEVEL: 'warn' } },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exit };
}

/** GET `path` on the listener over `agent`; resolves with status and headers, rejects on a reset. */
function get(port: number, path: string, agent: Agent): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers: { host: 'x' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the error code of a fresh connection to `port` ('' when it connected). */
function connectCode(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve('');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/**
 * Connects and sends `text` at once; resolves with what came back once the peer closed ('' for
 * a connection closed unanswered, also when the reset came before our side saw it connected),
 * 'still open' when it had not closed after `waitMs`, or the error code when the connection was
 * never made (ECONNREFUSED).
 */
function answerBeforeClose(port: number, text: string, waitMs = 3_000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    let connected = false;
    let failed = '';
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      connected = true;
      s.write(text);
    });
    s.on('data', (d: Buffer) => (got += d.toString()));
    // Our write can meet the close with a reset; an error before the connection is the answer.
    s.on('error', (err: NodeJS.ErrnoException) => (failed = err.code ?? err.message));
    const timer = setTimeout(() => {
      s.destroy();
      resolve('still open');
    }, waitMs);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(connected || failed === 'ECONNRESET' ? got : failed);
    });
  });
}

/** A counter or gauge from the proxy's /stats?format=json; undefined when absent. */
async function stat(admin: number, name: string): Promise<number | undefined> {
  const res = await fetch(`http://127.0.0.1:${admin}/stats?format=json`);
  const body = (await res.json()) as { stats: Array<{ name: string; value: number }> };
  return body.stats.find((s) => s.name === name)?.value;
}

/** Writes `text` and resolves with what came back once `text.length` bytes did. */
async function echo(socket: net.Socket, text: string): Promise<string> {
  let got = '';
  const onData = (d: Buffer): void => {
    got += d.toString();
  };
  socket.on('data', onData);
  socket.write(text);
  while (got.length < text.length) await once(socket, 'data');
  socket.off('data', onData);
  return got;
}

describe('consul-xds proxy (separate process)', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let app: RunningApp | undefined;
  let web: Upstream | undefined;
  let proc: ReturnType<typeof spawnProxy> | undefined;
  let listener = 0;
  let tcpListener = 0;
  let slow: Awaited<ReturnType<typeof listenHttp>> | undefined;
  let echoServer: net.Server | undefined;
  /** Paths the slow upstream has received (so a test knows a request is in flight). */
  const slowSeen: string[] = [];

  before(async () => {
    dir = await makeTempDir('dataplane-cli');
    web = await startUpstream('web');
    // Answers /slow?ms=N after N ms.
    slow = await listenHttp((req, res) => {
      slowSeen.push(req.url ?? '');
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
      setTimeout(() => res.end('slow'), ms).unref();
    });
    echoServer = net.createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echoServer?.listen(0, '127.0.0.1', resolve));
    const echoPort = (echoServer.address() as net.AddressInfo).port;
    [listener, tcpListener] = await Promise.all([freePort(), freePort()]);
    const configFile = join(dir.path, 'c.yaml');
    await writeFile(
      configFile,
      `listener:
  edge: { address: "127.0.0.1", port: ${listener} }
  pipe: { address: "127.0.0.1", port: ${tcpListener}, type: tcp, cluster: echo }
route: { domain: ["*"], cluster: { slow: { prefix: ["/slow"] }, web: { prefix: ["/"] } } }
cluster: { loadbalancer: { web: {}, slow: {}, echo: {} } }
endpoint:
  eds:
    web: { static: [{ address: "127.0.0.1", port: ${web.port} }] }
    slow: { static: [{ address: "127.0.0.1", port: ${slow.port} }] }
    echo: { static: [{ address: "127.0.0.1", port: ${echoPort} }] }
`,
    );
    app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
  });

  after(async () => {
    if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
    await app?.close();
    await web?.close();
    await slow?.close();
    echoServer?.close();
    await dir?.remove();
  });

  /** Spawns the proxy with `drainS` (and `extra` flags) and waits for LIVE; returns it and its admin port. */
  async function startLive(drainS: number, extra: string[] = []): Promise<{ p: ReturnType<typeof spawnProxy>; admin: number }> {
    const admin = await freePort();
    const p = spawnProxy([
      '--xds',
      `127.0.0.1:${app?.xdsPort}`,
      '--node-id',
      'drain-node',
      '--node-cluster',
      'edge',
      '--admin-port',
      String(admin),
      '--drain-time-s',
      String(drainS),
      ...extra,
    ]);
    proc = p;
    await waitUntil(
      async () => {
        if (p.child.exitCode !== null) throw new GiveUp(`proxy exited early: ${p.output()}`);
        const r = await fetch(`http://127.0.0.1:${admin}/ready`).catch(() => undefined);
        return (await r?.text())?.trim() === 'LIVE';
      },
      { what: 'the proxy process to be LIVE', context: () => p.output() },
    );
    return { p, admin };
  }

  /** Starts a request the slow upstream never answers in time; resolves once it is in flight, with its outcome. */
  async function hangingRequest(path: string, agent: Agent): Promise<{ outcome: Promise<string> }> {
    const outcome = get(listener, path, agent).then(
      () => 'answered',
      (err: NodeJS.ErrnoException) => err.code ?? err.message,
    );
    await waitUntil(() => slowSeen.includes(path), { what: `${path} to reach its upstream` });
    return { outcome };
  }

  /** Waits for exit code `want` with the hanging request reset; returns how long after `t0` it came. */
  async function exitsCuttingOff(
    p: ReturnType<typeof spawnProxy>,
    want: number,
    t0: number,
    hung: { outcome: Promise<string> },
    agent: Agent,
  ): Promise<number> {
    const code = await p.exit;
    const tookMs = Date.now() - t0;
    agent.destroy();
    assert.equal(code, want, p.output());
    assert.equal(await hung.outcome, 'ECONNRESET');
    return tookMs;
  }

  /**
   * After SIGTERM no new connection is served. Every listener refuses once the drain has begun; at
   * --concurrency 2 the listeners stop one after the other, each when the last worker's close of
   * it reached the primary (node:cluster's primary holds the listen sockets), so a connection the
   * primary accepted just before is closed unanswered (or, node:cluster leaking one handed to a
   * worker that had just closed, held unanswered until the primary exits) - never served.
   */
  async function refusesAfterDrainBegan(port: number, what: string, p: ReturnType<typeof spawnProxy>): Promise<void> {
    await waitUntil(
      async () => {
        const got = await answerBeforeClose(port, `GET /after-sigterm HTTP/1.1\r\nhost: x\r\n\r\n`, 1_000);
        if (got === 'ECONNREFUSED') return true;
        if (got !== '' && got !== 'still open') throw new GiveUp(`${what}: a connection made after the drain began was answered: ${JSON.stringify(got)}`);
        return false;
      },
      { what: `${what} to refuse new connections`, timeoutMs: 5_000, intervalMs: 20, context: () => p.output() },
    );
  }

  for (const concurrency of [1, 2])
    it(`SIGTERM drains (--concurrency ${concurrency}): requests in flight (HTTP/1.1, HTTP/2) get their 200, TCP keeps piping, new connections are refused, exit when done`, async () => {
      const drainS = 30;
      const { p, admin } = await startLive(drainS, ['--concurrency', String(concurrency)]);
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      // A warm keep-alive connection, so the in-flight request's response can tell it to close.
      assert.equal((await get(listener, '/hello', agent)).status, 200);
      const tcp = net.connect({ host: '127.0.0.1', port: tcpListener });
      await once(tcp, 'connect');
      assert.equal(await echo(tcp, 'before'), 'before');
      // Paths of this run only (slowSeen keeps the other concurrency's).
      const [h1Path, h2Path] = [`/slow/a-c${concurrency}?ms=1500`, `/slow/h2-c${concurrency}?ms=1500`];
      const inFlight = get(listener, h1Path, agent);
      // The same over HTTP/2 (h2c): the stream must finish after GOAWAY.
      const h2 = http2.connect(`http://127.0.0.1:${listener}`);
      h2.on('error', () => undefined);
      const goaway = once(h2, 'goaway');
      const h2InFlight = new Promise<number>((resolve, reject) => {
        const st = h2.request({ ':path': h2Path, ':authority': 'x' });
        let status = 0;
        st.on('response', (h) => (status = Number(h[':status'])));
        st.on('error', reject);
        st.on('end', () => resolve(status));
        st.resume();
        st.end();
      });
      await waitUntil(() => slowSeen.includes(h1Path) && slowSeen.includes(h2Path), {
        what: 'the slow requests to reach their upstream',
      });

      const t0 = Date.now();
      p.child.kill('SIGTERM');
      await waitUntil(async () => (await connectCode(listener)) === 'ECONNREFUSED', {
        what: 'the HTTP listener to refuse new connections',
        context: () => p.output(),
      });
      // The drain has begun in every worker: from now on no new connection to either listener is served.
      await refusesAfterDrainBegan(tcpListener, 'the TCP listener', p);
      await refusesAfterDrainBegan(listener, 'the HTTP listener', p);
      const ready = await fetch(`http://127.0.0.1:${admin}/ready`);
      assert.equal(ready.status, 503);
      assert.equal((await ready.text()).trim(), 'DRAINING');
      // The TCP connection opened before SIGTERM still carries bytes both ways.
      assert.equal(await echo(tcp, 'after-sigterm'), 'after-sigterm');

      const res = await inFlight;
      assert.equal(res.status, 200);
      assert.equal(res.headers.connection, 'close');
      await goaway;
      assert.equal(await h2InFlight, 200);
      h2.close();
      tcp.end();
      const code = await p.exit;
      const tookMs = Date.now() - t0;
      agent.destroy();
      assert.equal(code, 0, p.output());
      // Done when the last connection was, not at the 30 s deadline.
      assert.ok(tookMs < 10_000, `exited ${tookMs} ms after SIGTERM (drain time ${drainS} s)\n${p.output()}`);
    });

  it('SIGTERM drain ends at --drain-time-s: what is still open then is closed and the process exits 0', async () => {
    const drainS = 2;
    const { p } = await startLive(drainS);
    const agent = new Agent({ keepAlive: true });
    const hung = await hangingRequest('/slow/hung?ms=60000', agent);
    const t0 = Date.now();
    p.child.kill('SIGTERM');
    const tookMs = await exitsCuttingOff(p, 0, t0, hung, agent);
    assert.ok(tookMs >= drainS * 1000 - 100, `exited after ${tookMs} ms, before the ${drainS} s drain time`);
    assert.ok(tookMs < drainS * 1000 + 3_000, `exited ${tookMs} ms after SIGTERM, drain time ${drainS} s\n${p.output()}`);
  });

  it('a second SIGTERM during the drain ends the process at once (exit 1, lifecycle.ts)', async () => {
    const { p } = await startLive(30);
    const agent = new Agent({ keepAlive: true });
    const hung = await hangingRequest('/slow/cut?ms=60000', agent);
    const t0 = Date.now();
    p.child.kill('SIGTERM');
    await waitUntil(async () => (await connectCode(listener)) === 'ECONNREFUSED', { what: 'the drain to start', context: () => p.output() });
    p.child.kill('SIGTERM');
    const tookMs = await exitsCuttingOff(p, 1, t0, hung, agent);
    assert.ok(tookMs < 5_000, `exited ${tookMs} ms after the first SIGTERM (drain time 30 s)\n${p.output()}`);
  });

  it('--max-downstream-connections 3: three keep-alive connections work, one more (HTTP or TCP) is closed at accept and counted, a freed place is taken again', async () => {
    const { p, admin } = await startLive(1, ['--max-downstream-connections', '3', '--concurrency', '1']);
    const agents = [0, 1, 2].map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
    const overflow = (port: number) => stat(admin, `listener.127.0.0.1_${port}.downstream_global_cx_overflow`);
    const REQUEST = 'GET /hello HTTP/1.1\r\nhost: x\r\n\r\n';
    try {
      // Three connections, each kept open and used twice.
      for (const a of agents) for (let i = 0; i < 2; i++) assert.equal((await get(listener, '/hello', a)).status, 200);
      assert.equal(await stat(admin, `listener.127.0.0.1_${listener}.downstream_cx_active`), 3);
      assert.equal(await stat(admin, `listener.127.0.0.1_${listener}.downstream_cx_total`), 3);
      assert.equal(await overflow(listener), 0);

      // A fourth is closed unanswered, on the HTTP listener and on the TCP one (the cap is global).
      assert.equal(await answerBeforeClose(listener, REQUEST), '', 'the HTTP listener closed the 4th connection without an answer');
      assert.equal(await answerBeforeClose(tcpListener, 'echo?'), '', 'the TCP listener closed the 4th connection without piping');
      assert.equal(await overflow(listener), 1);
      assert.equal(await overflow(tcpListener), 1);
      assert.equal(await stat(admin, `listener.127.0.0.1_${listener}.downstream_cx_total`), 3, 'a refused connection is no downstream_cx_total');
      // The three open ones kept working.
      for (const a of agents) assert.equal((await get(listener, '/hello', a)).status, 200);

      // One closes: its place goes to the next connection, on whichever listener.
      agents[0]?.destroy();
      await waitUntil(async () => (await stat(admin, `listener.127.0.0.1_${listener}.downstream_cx_active`)) === 2, {
        what: 'the proxy to see the close',
        context: () => p.output(),
      });
      const tcp = net.connect({ host: '127.0.0.1', port: tcpListener });
      await once(tcp, 'connect');
      assert.equal(await echo(tcp, 'admitted'), 'admitted');
      tcp.destroy();
      assert.equal(await overflow(tcpListener), 1);
    } finally {
      for (const a of agents) a.destroy();
      p.child.kill('SIGTERM');
      assert.equal(await p.exit, 0, p.output());
    }
  });

  it('starts from flags, turns LIVE, proxies, and exits 0 on SIGTERM', async () => {
    const admin = await freePort();
    proc = spawnProxy([
      '--xds',
      `127.0.0.1:${app?.xdsPort}`,
      '--node-id',
      'cli-node',
      '--node-cluster',
      'edge',
      '--locality',
      'r1/z1',
      '--admin-port',
      String(admin),
    ]);
    const p = proc;
    await waitUntil(
      async () => {
        if (p.child.exitCode !== null) throw new GiveUp(`proxy exited early: ${p.output()}`);
        const r = await fetch(`http://127.0.0.1:${admin}/ready`);
        return (await r.text()).trim() === 'LIVE';
      },
      { what: 'the proxy process to be LIVE', context: () => p.output() },
    );
    const r = await send({ port: listener, host: 'x', path: '/hello' });
    assert.equal(r.status, 200);
    assert.equal(r.upstream, 'web');
    const info = (await (await fetch(`http://127.0.0.1:${admin}/server_info`)).json()) as { node: { id: string; locality: { zone: string } } };
    assert.equal(info.node.id, 'cli-node');
    assert.equal(info.node.locality.zone, 'z1');
    p.child.kill('SIGTERM');
    assert.equal(await p.exit, 0, p.output());
  });

  it('names missing flags', async () => {
    const p = spawnProxy(['--node-id', 'x']);
    const code = await p.exit;
    assert.notEqual(code, 0);
    assert.match(p.output(), /missing --xds, --node-cluster/);
  });
});
