/**
 * What every example starts, in one place: demo upstreams (in this process, or `consul-xds
 * demo-upstream` children for multi-process ones), a dev Consul agent, `consul-xds serve`, and a
 * data plane (Envoy from scripts/install-envoy.sh, or `consul-xds proxy`), each a child process
 * whose output goes to a log file in the example's scratch folder. Also the probes the
 * walkthroughs print: request tallies by the upstream that answered, and "the data plane has
 * ACKed the new config" from serve's /status/clients.
 *
 * Ports: an example's files name fixed ports (the ones its README shows). With `--free-ports`
 * (the tests) every one of them is mapped to a free loopback port, in the config, the Envoy
 * bootstrap and the printed commands alike.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { credentials, Client } from '@grpc/grpc-js';
import { isMap, isScalar, isSeq, parseDocument, visit } from 'yaml';
import { freePort } from '../../test/support/ports.js';
import { startDemoUpstream, GREETER_DEFINITION, type DemoProtocol, type DemoUpstream } from '../../src/demo/upstream.js';

/** Repository root, from dist/scripts/example/ three levels up. */
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');

export type DataPlaneKind = 'envoy' | 'ts-proxy' | 'none';

export interface StackOptions {
  readonly example: string;
  readonly dataPlane: DataPlaneKind;
  readonly freePorts: boolean;
  /** Print lines (the walkthrough) here. */
  readonly print: (line: string) => void;
}

/** The node the examples' data plane announces (examples/envoy-bootstrap.yaml). */
export const NODE_ID = 'envoy-local';

export class Stack {
  readonly dir: string;
  readonly opts: StackOptions;
  readonly #ports = new Map<number, number>();
  readonly #children: Array<{ name: string; child: ChildProcess; exited: Promise<void> }> = [];
  readonly #upstreams: DemoUpstream[] = [];

  private constructor(dir: string, opts: StackOptions) {
    this.dir = dir;
    this.opts = opts;
  }

  static async create(opts: StackOptions): Promise<Stack> {
    return new Stack(await mkdtemp(join(tmpdir(), `consul-xds-example-${opts.example}-`)), opts);
  }

  /** The port that stands for the example's fixed port `p` (itself, unless --free-ports). */
  async port(p: number): Promise<number> {
    let mapped = this.#ports.get(p);
    if (mapped === undefined) {
      mapped = this.opts.freePorts ? await this.freshPort() : p;
      this.#ports.set(p, mapped);
    }
    return mapped;
  }

  /** A free loopback port, never one handed out before (test/support/ports.ts). */
  freshPort(): Promise<number> {
    return freePort();
  }

  /** Synchronous view of an already mapped port (after writeConfig / port()). */
  p(port: number): number {
    const mapped = this.#ports.get(port);
    if (mapped === undefined) throw new Error(`example: port ${port} was never mapped`);
    return mapped;
  }

  /**
   * `file` (relative to the repository) with every port remapped: numbers under `port` /
   * `port_value`, and `host:port` strings in a `hosts` list. Written to the scratch folder (the
   * walkthrough may edit it there) and that path returned; without --free-ports and `copy`, the
   * file itself.
   */
  async writeConfig(file: string, opts: { copy?: boolean } = {}): Promise<string> {
    const source = join(ROOT, file);
    const doc = parseDocument(await readFile(source, 'utf8'));
    const wanted: Array<() => Promise<void>> = [];
    visit(doc, {
      Pair: (_key, pair) => {
        const key = isScalar(pair.key) ? String(pair.key.value) : '';
        if ((key === 'port' || key === 'port_value') && isScalar(pair.value) && typeof pair.value.value === 'number') {
          const node = pair.value;
          const from = node.value as number;
          wanted.push(async () => {
            node.value = await this.port(from);
          });
        }
        if (key === 'hosts' && isSeq(pair.value)) {
          for (const item of pair.value.items) {
            if (!isScalar(item) || typeof item.value !== 'string') continue;
            const m = /^(.*):(\d+)$/.exec(item.value);
            if (!m) continue;
            const node = item;
            wanted.push(async () => {
              node.value = `${m[1]}:${await this.port(Number(m[2]))}`;
            });
          }
        }
      },
    });
    for (const w of wanted) await w();
    if (!this.opts.freePorts && !opts.copy) return source;
    const out = join(this.dir, file.replaceAll('/', '_'));
    await writeFile(out, isMap(doc.contents) ? doc.toString() : String(doc));
    return out;
  }

  /** A demo upstream in this process. */
  async upstream(name: string, protocol: DemoProtocol, port: number): Promise<DemoUpstream> {
    const u = await startDemoUpstream({ name, protocol, port: await this.port(port) });
    this.#upstreams.push(u);
    return u;
  }

  /** Stops one in-process demo upstream (and forgets it). */
  async stopUpstream(u: DemoUpstream): Promise<void> {
    this.#upstreams.splice(this.#upstreams.indexOf(u), 1);
    await u.close();
  }

  /** A child process whose stdout+stderr go to <dir>/<name>.log (or this terminal with `inherit`). */
  spawn(name: string, command: string, args: readonly string[], opts: { inherit?: boolean; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const log = opts.inherit ? undefined : openSync(join(this.dir, `${name}.log`), 'a');
    const child = spawn(command, args, {
      stdio: log === undefined ? ['ignore', 'inherit', 'inherit'] : ['ignore', log, log],
      env: { ...process.env, ...opts.env },
    });
    if (log !== undefined) closeSync(log);
    const exited = new Promise<void>((done) => {
      child.once('exit', () => done());
      child.once('error', () => done());
    });
    this.#children.push({ name, child, exited });
    return child;
  }

  /** `consul-xds <args>` as a child; resolves with its output when it exits 0, rejects with it otherwise. */
  async cli(args: readonly string[]): Promise<string> {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: ROOT });
    return `${stdout}${stderr}`.trim();
  }

  /** `consul-xds serve` with these flags (the config source among them), quiet logs, access log to a file. */
  async serve(args: readonly string[], opts: { inherit?: boolean } = {}): Promise<{ adminUrl: string; accessLog: string }> {
    const accessLog = join(this.dir, 'access.log');
    const xds = await this.port(9000);
    const als = await this.port(9001);
    const admin = await this.port(9002);
    this.spawn(
      'serve',
      process.execPath,
      [
        CLI,
        'serve',
        ...args,
        '--xds-port',
        String(xds),
        '--als-port',
        String(als),
        '--admin-port',
        String(admin),
        ...(opts.inherit ? [] : ['--access-log-file', accessLog, '--log-level', 'warn']),
      ],
      opts,
    );
    const adminUrl = `http://127.0.0.1:${admin}`;
    // xDS listens once the first snapshot is built (after the admin port).
    await this.waitFor('consul-xds serve to listen for xDS', () => connects(xds), 'serve');
    return { adminUrl, accessLog };
  }

  /** The data plane chosen on the command line, fed by serve; resolves once it is ready. */
  async dataPlane(): Promise<string | undefined> {
    if (this.opts.dataPlane === 'none') return undefined;
    const bootstrap = await this.writeConfig('examples/envoy-bootstrap.yaml');
    const admin = this.p(9901);
    if (this.opts.dataPlane === 'envoy') {
      const bin = process.env.ENVOY_BIN ?? (await promisify(execFile)('bash', [join(ROOT, 'scripts', 'install-envoy.sh')])).stdout.trim();
      // --use-dynamic-base-id: several Envoys (parallel tests, a second example) never share hot-restart memory.
      this.spawn('envoy', bin, ['-c', bootstrap, '--use-dynamic-base-id', '--log-level', 'warn', '--concurrency', '2']);
    } else {
      this.spawn('proxy', process.execPath, [CLI, 'proxy', '--bootstrap', bootstrap, '--log-level', 'warn']);
    }
    const adminUrl = `http://127.0.0.1:${admin}`;
    await this.waitFor(
      `${this.opts.dataPlane} to be ready (${adminUrl}/ready)`,
      async () => (await fetch(`${adminUrl}/ready`)).ok,
      this.opts.dataPlane === 'envoy' ? 'envoy' : 'proxy',
    );
    return adminUrl;
  }

  /** A dev Consul agent (scripts/install-consul.sh, or CONSUL_BIN) on loopback; resolves with its address. */
  async consul(): Promise<string> {
    const bin = process.env.CONSUL_BIN ?? (await promisify(execFile)('bash', [join(ROOT, 'scripts', 'install-consul.sh')])).stdout.trim();
    const http = await this.port(8500);
    // The agent's other ports are never printed: free ones unless the defaults are asked for.
    const other = async (p: number) => String(this.opts.freePorts ? await this.freshPort() : p);
    // biome-ignore format: flag/value pairs
    this.spawn('consul', bin, [
      'agent', '-dev', '-bind', '127.0.0.1', '-client', '127.0.0.1', '-node', `example-${this.opts.example}`,
      '-http-port', String(http), '-dns-port', '-1', '-grpc-port', '-1',
      '-serf-lan-port', await other(8301), '-serf-wan-port', await other(8302), '-server-port', await other(8300),
      '-data-dir', join(this.dir, 'consul-data'), '-log-level', 'warn',
    ]);
    const address = `http://127.0.0.1:${http}`;
    await this.waitFor(
      'Consul to elect itself leader',
      async () => {
        const res = await fetch(`${address}/v1/status/leader`);
        return res.ok && (await res.text()).length > 4;
      },
      'consul',
    );
    return address;
  }

  /** Polls `probe` (errors count as "not yet") for up to 30 s; the failure names `what` and the log tail of `log`. */
  async waitFor<T>(what: string, probe: () => Promise<T | false | undefined>, log?: string): Promise<T> {
    const deadline = Date.now() + 30_000;
    let last = '';
    for (;;) {
      try {
        const v = await probe();
        if (v !== false && v !== undefined) return v;
      } catch (err) {
        last = (err as Error).message;
      }
      const dead = this.#children.find((c) => c.child.exitCode !== null && c.child.exitCode !== 0);
      if (Date.now() > deadline || dead) {
        const tail = log ? await this.logTail(log) : '';
        throw new Error(
          `${dead ? 'gave up' : 'timed out'} waiting for ${what}${last ? ` (last error: ${last})` : ''}${dead ? `; ${dead.name} exited with ${dead.child.exitCode}: ${await this.logTail(dead.name)}` : ''}\n${tail}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async logTail(name: string, lines = 15): Promise<string> {
    const text = await readFile(join(this.dir, `${name}.log`), 'utf8').catch(() => '');
    return text.split('\n').slice(-lines).join('\n');
  }

  /** Stops every child (SIGTERM, then SIGKILL after 5 s) and upstream, and removes the scratch folder. */
  async close(): Promise<void> {
    await Promise.all(this.#upstreams.splice(0).map((u) => u.close()));
    const children = this.#children.splice(0).reverse();
    for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGTERM');
    const kill = setTimeout(() => {
      for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
    }, 5000);
    await Promise.all(children.map((c) => c.exited));
    clearTimeout(kill);
    if (!process.env.KEEP_EXAMPLE_TMP) await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The data plane's counters for `cluster` whose names match `names` (after `cluster.<cluster>.`)
 * and are not 0, from its admin /stats (Envoy's and consul-xds proxy's speak the same text form),
 * as "upstream_cx_total 6, upstream_rq_503 1": what explains a step's unexpected status codes.
 */
export async function clusterStats(adminUrl: string, cluster: string, names: RegExp): Promise<string> {
  const prefix = `cluster.${cluster}.`;
  const res = await fetch(`${adminUrl}/stats?filter=${encodeURIComponent(`^${prefix.replaceAll('.', '\\.')}`)}`);
  if (!res.ok) return `(${adminUrl}/stats answered ${res.status})`;
  const counters: string[] = [];
  for (const line of (await res.text()).split('\n')) {
    const [, name = '', value = '0'] = /^(\S+): (\d+)$/.exec(line) ?? [];
    const short = name.slice(prefix.length);
    if (name.startsWith(prefix) && names.test(short) && value !== '0') counters.push(`${short} ${value}`);
  }
  return counters.join(', ') || '(all 0)';
}

/** True when a TCP connection to 127.0.0.1:`port` succeeds. */
function connects(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      done(true);
    });
    s.once('error', () => done(false));
  });
}

/** GET `url` (optionally with a Host header) and resolve with the status and the `x-upstream` header. */
export function get(url: string, opts: { host?: string; agent?: http.Agent } = {}): Promise<{ status: number; upstream: string | undefined }> {
  return new Promise((done, fail) => {
    const req = http.get(url, { agent: opts.agent, headers: opts.host ? { host: opts.host } : {} }, (res) => {
      res.resume();
      res.once('end', () => done({ status: res.statusCode ?? 0, upstream: res.headers['x-upstream'] as string | undefined }));
      res.once('error', fail);
    });
    req.once('error', fail);
  });
}

/**
 * Sends `n` GETs to `url` (`concurrency` at a time, keep-alive) and counts the answers by the demo
 * upstream that sent them (its `x-upstream` header); anything but a 200 is counted as `status <code>`.
 */
export async function tally(url: string, n: number, opts: { concurrency?: number; host?: string } = {}): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const agent = new http.Agent({ keepAlive: true });
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      let key: string;
      try {
        const res = await get(url, { agent, ...(opts.host ? { host: opts.host } : {}) });
        key = res.status === 200 ? (res.upstream ?? '(unnamed)') : `status ${res.status}`;
      } catch (err) {
        key = `error ${(err as Error).message}`;
      }
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  } finally {
    agent.destroy();
  }
  return counts;
}

/** `n` calls of consulxds.demo.Greeter/Hello over ONE gRPC connection, counted by the backend that answered. */
export async function grpcTally(target: string, n: number, concurrency = 8): Promise<Map<string, number>> {
  const client = new Client(target, credentials.createInsecure());
  const counts = new Map<string, number>();
  const def = GREETER_DEFINITION.Hello;
  let next = 0;
  const call = () =>
    new Promise<string>((done) =>
      client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, 'example', (err, reply) =>
        done(err ? `error ${err.code}` : (reply ?? '(empty)')),
      ),
    );
  const worker = async () => {
    while (next < n) {
      next++;
      const key = await call();
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    client.close();
  }
  return counts;
}

/** "web-api-perl 178, web-api-go 22", sorted by name: the form the walkthroughs print after `got:`. */
export function formatTally(counts: ReadonlyMap<string, number>): string {
  return (
    [...counts]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '(nothing)'
  );
}

/** The versions serve's /status/clients reports for `node`, once it is connected and up to date. */
export async function ackedVersions(adminUrl: string, node = NODE_ID): Promise<string | undefined> {
  const res = await fetch(`${adminUrl}/status/clients`);
  const body = (await res.json()) as { nodes: Array<{ nodeId: string; upToDate: boolean; types: Record<string, { ackedVersion?: string }> }> };
  const st = body.nodes.find((n) => n.nodeId === node);
  if (!st?.upToDate) return undefined;
  return JSON.stringify(Object.fromEntries(Object.entries(st.types).map(([t, v]) => [t, v.ackedVersion])));
}
