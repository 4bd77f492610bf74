/**
 * The real CLI as a child process (`node dist/src/cli.js serve|proxy ...`) under signals, and the
 * fatal-error policy (src/commands/lifecycle.ts):
 *  - serve, SIGHUP after a logrotate-style rename (no copytruncate) while access-log entries keep
 *    arriving over ALS: the process lives on, a new file appears at the configured path, the
 *    entries sent after the reopen are in it, and across both files every entry is there exactly
 *    once and in order;
 *  - serve and proxy, SIGUSR1: the process lives on and no inspector opens (no "Debugger
 *    listening" on stderr, no new listening socket of that process, 9229 in particular); serve
 *    ignores it; proxy reopens its file access log as Envoy does: after a logrotate-style rename,
 *    the requests sent after the signal are logged in a new file at the configured path, each
 *    request once across both files;
 *  - serve and proxy, SIGTERM: exit code 0; serve, SIGTERM during start-up (waiting for an
 *    unreachable Consul): exit code 0 at once;
 *  - an uncaught exception and an unhandled rejection: one fatal JSON log line with the error and
 *    its stack, then exit code 1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { alsServiceDefinition } from '../../src/als/sink.js';
import { loadExtras } from '../../src/proxy/xds/resource-types.js';
import { startXds, type XdsHarness } from '../support/xds-harness.js';
import { send } from '../support/traffic.js';
import { freePort, GiveUp, makeTempDir, waitUntil } from '../support/tmp.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const LIFECYCLE = fileURLToPath(new URL('../../src/commands/lifecycle.js', import.meta.url));
const LOG = fileURLToPath(new URL('../../src/log.js', import.meta.url));

interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  readonly exit: Promise<number | null>;
  alive(): boolean;
}

function spawnNode(args: string[]): Proc {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONSUL_XDS_LOG_LEVEL: 'info' } });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    pid: child.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    exit,
    alive: () => child.exitCode === null && child.signalCode === null,
  };
}

/** Waits for `pattern` on the process's stderr; gives up if the process exits first. */
function stderrMatch(p: Proc, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return waitUntil(
    () => {
      if (!p.alive()) throw new GiveUp(`process exited (${p.child.exitCode ?? p.child.signalCode}) before ${what}`);
      return pattern.exec(p.stderr()) ?? undefined;
    },
    { what, context: () => `stderr:\n${p.stderr()}\nstdout:\n${p.stdout()}` },
  );
}

/** The process's log records (pino JSON lines on stdout). */
function records(p: Proc): Array<Record<string, unknown>> {
  return p
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function waitForRecord(p: Proc, msg: string, since: number): Promise<Record<string, unknown>> {
  return waitUntil(
    () => {
      const found = records(p)
        .slice(since)
        .find((r) => r.msg === msg);
      if (!found && !p.alive()) throw new GiveUp(`process exited (${p.child.exitCode ?? p.child.signalCode}) before logging '${msg}'`);
      return found;
    },
    { what: `the log line '${msg}'`, timeoutMs: 5000, context: () => `stderr:\n${p.stderr()}\nstdout:\n${p.stdout()}` },
  );
}

/** TCP ports the process listens on, from /proc (its socket inodes matched against the tables). */
function listeningPorts(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1] (hex ip:port), st is f[3] (0A = LISTEN), inode is f[9].
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9]!)) ports.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** SIGUSR1 must neither end the process nor open a debugger; `done` is the log line of what it does instead. */
async function expectSigusr1NoDebugger(p: Proc, done: string): Promise<void> {
  const before = listeningPorts(p.pid);
  const since = records(p).length;
  p.child.kill('SIGUSR1');
  await waitUntil(
    () => {
      if (/Debugger listening/.test(p.stderr())) throw new GiveUp(`SIGUSR1 opened the inspector: ${p.stderr()}`);
      return records(p)
        .slice(since)
        .some((r) => r.msg === done);
    },
    { what: `SIGUSR1 to be logged as '${done}'`, timeoutMs: 5000, context: () => `stderr:\n${p.stderr()}` },
  );
  assert.ok(p.alive(), 'alive after SIGUSR1');
  assert.doesNotMatch(p.stderr(), /Debugger listening/);
  const now = listeningPorts(p.pid);
  assert.equal(now.has(9229), false, 'no inspector on 9229');
  assert.deepEqual([...now].sort(), [...before].sort(), 'no new listening socket');
}

type AlsCall = grpc.ClientWritableStream<object>;

/** The request numbers (`/n/<k>`) of the access-log JSON lines in `file`, in file order; [] when it does not exist. */
function numbers(file: string): number[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(/^\/n\/(\d+)$/.exec(String((JSON.parse(l) as { path: string }).path))?.[1]));
}

describe('consul-xds serve as a process: SIGHUP, SIGUSR1, SIGTERM', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let proc: Proc;
  let logFile = '';
  let admin = '';
  let client: grpc.Client;
  let call: AlsCall;

  before(async () => {
    dir = await makeTempDir('cli-signals');
    logFile = join(dir.path, 'access.log');
    const configFile = join(dir.path, 'c.yaml');
    const listener = await freePort();
    await writeFile(
      configFile,
      `listener: { edge: { address: "127.0.0.1", port: ${listener} } }
route: { domain: ["*"], cluster: { web: { prefix: ["/"] } } }
cluster: { loadbalancer: { web: {} } }
endpoint: { eds: { web: { static: [{ address: "127.0.0.1", port: 9 }] } } }
`,
    );
    proc = spawnNode([CLI, 'serve', '--config', configFile, '--xds-port', '0', '--admin-port', '0', '--als-port', '0', '--access-log-file', logFile]);
    const als = (await stderrMatch(proc, /Access Log Service: 127\.0\.0\.1:(\d+)/, 'serve to announce its ALS port'))[1];
    admin = `http://127.0.0.1:${(await stderrMatch(proc, /Admin: http:\/\/127\.0\.0\.1:(\d+)\//, 'the admin port'))[1]}`;
    const Ctor = grpc.makeGenericClientConstructor(alsServiceDefinition(), 'AccessLogService');
    client = new Ctor(`127.0.0.1:${als}`, grpc.credentials.createInsecure());
    const open = (client as unknown as Record<string, (cb: (err: grpc.ServiceError | null) => void) => AlsCall>).StreamAccessLogs!;
    call = open.call(client, () => undefined);
    call.on('error', () => undefined); // the process ends while the stream is open
  });

  after(async () => {
    client?.close();
    if (proc?.alive()) proc.child.kill('SIGKILL');
    await dir?.remove();
  });

  let sent = 0;
  const sendEntry = () => {
    const entry = {
      common_properties: { upstream_cluster: 'web' },
      request: { request_method: 'GET', path: `/n/${sent}` },
      response: { response_code: { value: 200 } },
    };
    call.write({ ...(sent === 0 ? { identifier: { node: { id: 'envoy-1' }, log_name: 'edge' } } : {}), http_logs: { log_entry: [entry] } });
    sent++;
  };

  it('SIGHUP after logrotate renamed the access log: alive, a new file, later lines in it, none lost or repeated', async () => {
    for (let i = 0; i < 100; i++) sendEntry();
    await waitUntil(() => numbers(logFile).length === 100, { what: '100 lines in the access log', context: () => `${numbers(logFile).length} lines` });

    const rotated = `${logFile}.1`;
    fs.renameSync(logFile, rotated);
    // Entries keep arriving around the signal, as they would from a busy Envoy.
    let sending = true;
    const sender = (async () => {
      while (sending) {
        for (let i = 0; i < 20; i++) sendEntry();
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    let sentBeforeReopenSeen = 0;
    try {
      await waitUntil(() => numbers(rotated).length > 200, { what: 'lines into the renamed file before SIGHUP' });
      const since = records(proc).length;
      proc.child.kill('SIGHUP');
      await waitForRecord(proc, 'access log reopened', since);
      sentBeforeReopenSeen = sent;
      await waitUntil(() => numbers(logFile).length > 200, { what: 'lines in the new file' });
    } finally {
      sending = false;
      await sender;
    }
    for (let i = 0; i < 100; i++) sendEntry();

    assert.ok(proc.alive(), 'alive after SIGHUP');
    assert.equal((await fetch(`${admin}/status/clients`)).status, 200, 'still serving its admin port');
    const all = await waitUntil(
      () => {
        const got = [...numbers(rotated), ...numbers(logFile)];
        return got.length >= sent ? got : undefined;
      },
      { what: `all ${sent} entries across the two files`, context: () => `${numbers(rotated).length} + ${numbers(logFile).length} of ${sent}` },
    );
    assert.equal(all.length, sent, 'nothing repeated');
    all.forEach((n, i) => {
      assert.equal(n, i, 'every entry once, in order, old file first');
    });
    const fresh = numbers(logFile);
    assert.ok(fresh[0]! <= sentBeforeReopenSeen, 'the new file takes over where the old one stopped');
    assert.equal(fresh.at(-1), sent - 1, 'the lines after SIGHUP are in the new file');
  });

  it('SIGUSR1: alive, and no debugger opens', async () => {
    await expectSigusr1NoDebugger(proc, 'SIGUSR1 ignored: no debugger is opened');
    assert.equal((await fetch(`${admin}/status/clients`)).status, 200, 'still serving its admin port');
  });

  it('SIGTERM: a clean exit with code 0', async () => {
    const since = records(proc).length;
    proc.child.kill('SIGTERM');
    assert.equal(await proc.exit, 0, proc.stderr());
    assert.equal(
      records(proc)
        .slice(since)
        .find((r) => r.msg === 'shutting down')?.signal,
      'SIGTERM',
    );
  });
});

describe('consul-xds serve as a process: SIGTERM during start-up', () => {
  it('exits 0 at once, not after the start-up timeout', async () => {
    // Nothing listens there: start-up waits (10 s by default) for the config from Consul KV.
    const p = spawnNode([
      CLI,
      'serve',
      '--consul',
      `http://127.0.0.1:${await freePort()}`,
      '--consul-key',
      'consul-xds/config',
      '--xds-port',
      '0',
      '--admin-port',
      '0',
      '--no-als',
    ]);
    try {
      await waitForRecord(p, 'admin server listening', 0); // the sidecar starts first; the KV wait follows
      const sentAt = performance.now();
      p.child.kill('SIGTERM');
      assert.equal(await p.exit, 0, p.stderr());
      assert.ok(performance.now() - sentAt < 3000, `exited ${Math.round(performance.now() - sentAt)} ms after SIGTERM`);
      assert.equal(records(p).find((r) => r.msg === 'signal during start-up: exiting')?.signal, 'SIGTERM');
    } finally {
      if (p.alive()) p.child.kill('SIGKILL');
    }
  });
});

describe('consul-xds proxy as a process: SIGUSR1, SIGTERM', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>>;
  let xds: XdsHarness;
  let proc: Proc | undefined;
  let port = 0;
  let logFile = '';

  before(async () => {
    dir = await makeTempDir('cli-signals-proxy');
    logFile = join(dir.path, 'access.log');
    port = await freePort();
    loadExtras();
    // A file access log needs a hand-written listener: the YAML config knows only gRPC ALS.
    xds = await startXds({
      set: {
        clusters: [],
        endpoints: [],
        routes: [],
        listeners: [
          {
            name: 'edge',
            address: { socket_address: { address: '127.0.0.1', port_value: port } },
            filter_chains: [
              {
                filters: [
                  {
                    name: 'hcm',
                    typed_config: {
                      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                      stat_prefix: 'edge',
                      route_config: {
                        name: 'r',
                        virtual_hosts: [
                          { name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }] },
                        ],
                      },
                      http_filters: [{ name: 'router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
                      access_log: [
                        {
                          name: 'file',
                          typed_config: {
                            '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
                            path: logFile,
                            log_format: { json_format: { fields: { path: { stringValue: '%REQ(:PATH)%' } } } },
                          },
                        },
                      ],
                    },
                  },
                ],
              },
            ],
          },
        ],
      },
    });
  });

  after(async () => {
    if (proc?.alive()) proc.child.kill('SIGKILL');
    await xds?.close();
    await dir?.remove();
  });

  let sent = 0;
  const sendRequests = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) assert.equal((await send({ port, host: 'x', path: `/n/${sent++}` })).status, 200);
  };

  it('SIGUSR1 after logrotate renamed the access log: a new file takes the later lines, alive, no debugger; SIGTERM exits 0', async () => {
    // One process: the test reads the lines in request order, which two workers' writers need not keep.
    proc = spawnNode([
      CLI,
      'proxy',
      '--xds',
      `127.0.0.1:${xds.port}`,
      '--node-id',
      'signals',
      '--node-cluster',
      'edge',
      '--admin-port',
      '0',
      '--concurrency',
      '1',
    ]);
    const p = proc;
    const adminPort = (await stderrMatch(p, /admin http:\/\/127\.0\.0\.1:(\d+)\/ready/, 'the proxy to announce its admin port'))[1];
    await waitUntil(async () => (await (await fetch(`http://127.0.0.1:${adminPort}/ready`)).text()).trim() === 'LIVE', { what: 'the proxy to be LIVE' });
    await sendRequests(5);
    await waitUntil(() => numbers(logFile).length === 5, { what: '5 lines in the access log', context: () => `${numbers(logFile).length} lines` });

    const rotated = `${logFile}.1`;
    fs.renameSync(logFile, rotated);
    await sendRequests(3);
    await waitUntil(() => numbers(rotated).length === 8, { what: 'lines into the renamed file before SIGUSR1' });
    assert.equal(fs.existsSync(logFile), false, 'no new file before the signal');

    await expectSigusr1NoDebugger(p, 'access log reopened');
    await sendRequests(4);
    await waitUntil(() => numbers(logFile).length === 4, {
      what: 'the requests after SIGUSR1 in a new file at the configured path',
      context: () => `${numbers(logFile).length} lines`,
    });
    assert.deepEqual(numbers(rotated), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(numbers(logFile), [8, 9, 10, 11]);
    assert.equal((await fetch(`http://127.0.0.1:${adminPort}/ready`)).status, 200, 'still LIVE');
    p.child.kill('SIGTERM');
    assert.equal(await p.exit, 0, p.stderr());
  });
});

describe('fatal errors: logged at fatal, exit 1', () => {
  const script = (fault: string) =>
    `const { installLifecycle } = await import(${JSON.stringify(LIFECYCLE)});
     const { createLogger } = await import(${JSON.stringify(LOG)});
     installLifecycle(createLogger());
     setInterval(() => undefined, 1000); // a server would keep the process alive like this
     ${fault}`;

  for (const [name, fault, origin, message] of [
    ['an uncaught exception', `setTimeout(() => { throw new Error('thrown in a timer'); }, 10);`, 'uncaughtException', 'thrown in a timer'],
    ['an unhandled rejection', `setTimeout(() => void Promise.reject(new Error('nobody catches this')), 10);`, 'unhandledRejection', 'nobody catches this'],
  ] as const) {
    it(name, async () => {
      const p = spawnNode(['--input-type=module', '-e', script(fault)]);
      assert.equal(await p.exit, 1, p.stderr());
      const fatal = records(p).filter((r) => r.level === 60);
      assert.equal(fatal.length, 1, p.stdout());
      const err = fatal[0]!.err as { message: string; stack: string };
      assert.equal(fatal[0]!.origin, origin);
      assert.equal(err.message, message);
      assert.match(err.stack, new RegExp(`Error: ${message}\\n\\s+at `));
    });
  }
});
