/**
 * Runs a real Consul agent (`consul agent -dev`, Debian's 1.8.7 from scripts/install-consul.sh)
 * for integration tests. In: nothing, or fixed ports to come back on. Out: a handle with the HTTP
 * address, a ConsulClient, helpers for what tests do to Consul (KV writes, agent service
 * registration with TTL checks, maintenance mode, catalog registration of other nodes), and
 * stop()/start() to simulate an outage and a restart on the same ports.
 *
 * Every port is loopback; serf/server/http ports are picked free before the start (Consul cannot
 * report ports it chose itself), DNS and gRPC are off. A dev agent keeps its state in memory, so
 * a restart comes back with an empty catalog (but for the agent's own services, which it re-creates
 * from its data dir, TTL checks critical), with a lower index: the "index went backwards" case.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConsulClient, kvPath } from '../../src/consul/client.js';
import { freePort, makeTempDir, waitUntil } from './tmp.js';

const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

let cachedBin: Promise<string> | undefined;

/** CONSUL_BIN, or whatever scripts/install-consul.sh installs (cached in .cache/) and prints. */
export function consulBinary(): Promise<string> {
  if (process.env.CONSUL_BIN) return Promise.resolve(process.env.CONSUL_BIN);
  cachedBin ??= execFileAsync('bash', [join(repoRoot, 'scripts/install-consul.sh')], { cwd: repoRoot, timeout: 300_000 }).then(({ stdout }) => {
    const bin = stdout.trim().split('\n').pop() ?? '';
    if (!bin) throw new Error('scripts/install-consul.sh printed no path');
    return bin;
  });
  return cachedBin;
}

export interface ConsulPorts {
  readonly http: number;
  /** Only with the `tls` option. */
  readonly https?: number;
  readonly serfLan: number;
  readonly serfWan: number;
  readonly server: number;
}

export interface ServiceCheck {
  readonly CheckID: string;
  readonly TTL?: string;
  readonly Status?: 'passing' | 'warning' | 'critical';
  readonly Name?: string;
}

/** The agent API's service definition (the fields tests use). */
export interface AgentService {
  readonly Name: string;
  readonly ID: string;
  readonly Address?: string;
  readonly Port?: number;
  readonly Meta?: Readonly<Record<string, string>>;
  readonly Weights?: { readonly Passing: number; readonly Warning: number };
  readonly Checks?: readonly ServiceCheck[];
}

export interface ConsulAgent {
  /** http://127.0.0.1:<port> */
  readonly address: string;
  readonly ports: ConsulPorts;
  /** A client for this agent (with the ACL master token when ACLs are on). Closed by destroy(). */
  readonly client: ConsulClient;
  readonly running: boolean;
  kvPut(key: string, value: string): Promise<void>;
  kvDelete(key: string): Promise<void>;
  registerService(service: AgentService): Promise<void>;
  deregisterService(id: string): Promise<void>;
  /** Sets a TTL check: pass -> passing, warn -> warning, fail -> critical. */
  ttl(checkId: string, state: 'pass' | 'warn' | 'fail', note?: string): Promise<void>;
  serviceMaintenance(serviceId: string, enable: boolean, reason?: string): Promise<void>;
  /** Registers (or updates) a service on another, external node via the catalog, with node meta. */
  catalogRegister(entry: {
    node: string;
    address: string;
    nodeMeta?: Readonly<Record<string, string>>;
    service: {
      id: string;
      name: string;
      port?: number;
      address?: string;
      meta?: Readonly<Record<string, string>>;
      weights?: { Passing: number; Warning: number };
    };
    status: 'passing' | 'warning' | 'critical';
    output?: string;
  }): Promise<void>;
  /** Removes an external node (and its services and checks) from the catalog. */
  catalogDeregister(node: string): Promise<void>;
  /** Kills the agent (SIGTERM, then SIGKILL) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts the agent again on the same ports (state is empty: dev mode). */
  start(): Promise<void>;
  /** stop() and remove the data dir. Safe to call twice. */
  destroy(): Promise<void>;
  logTail(lines?: number): Promise<string>;
}

async function pickPorts(https: boolean): Promise<ConsulPorts> {
  return {
    http: await freePort(),
    serfLan: await freePort(),
    serfWan: await freePort(),
    server: await freePort(),
    ...(https ? { https: await freePort() } : {}),
  };
}

export interface StartConsulOptions {
  /** Turn ACLs on (default policy deny) with this master token; the handle's client uses it. */
  readonly aclMasterToken?: string;
  /** Also serve HTTPS (on `ports.https`) with these files, requiring client certificates. */
  readonly tls?: TlsFiles;
}

export interface TlsFiles {
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

/**
 * A throwaway CA, a server certificate for 127.0.0.1 (and DNS server.dc1.consul) and a client
 * certificate, made with openssl in `dir`. EC P-256 keys: fast to generate.
 */
export async function makeTlsFiles(dir: string): Promise<TlsFiles> {
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileAsync('openssl', args, { cwd: dir });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('req', '-x509', ...key, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-subj', '/CN=consul-xds test CA', '-days', '2');
  await writeFile(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:server.dc1.consul\n');
  await writeFile(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    await openssl('req', ...key, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who}`);
    await openssl(
      'x509',
      '-req',
      '-in',
      f(`${who}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${who}.pem`),
      '-days',
      '2',
      '-extfile',
      f(`${who}.ext`),
    );
  }
  return {
    caFile: f('ca.pem'),
    serverCertFile: f('server.pem'),
    serverKeyFile: f('server.key'),
    clientCertFile: f('client.pem'),
    clientKeyFile: f('client.key'),
  };
}

export async function startConsul(opts: StartConsulOptions = {}): Promise<ConsulAgent> {
  const bin = await consulBinary();
  const dir = await makeTempDir('consul');
  const ports = await pickPorts(opts.tls !== undefined);
  const address = `http://127.0.0.1:${ports.http}`;
  const client = ConsulClient.fromOptions({ address, token: opts.aclMasterToken }, {});
  const logFile = join(dir.path, 'consul.log');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let destroyed = false;

  const args = [
    'agent',
    '-dev',
    '-node',
    `consul-xds-test-${ports.http}`,
    '-bind',
    '127.0.0.1',
    '-client',
    '127.0.0.1',
    '-http-port',
    String(ports.http),
    '-dns-port',
    '-1',
    '-grpc-port',
    '-1',
    '-serf-lan-port',
    String(ports.serfLan),
    '-serf-wan-port',
    String(ports.serfWan),
    '-server-port',
    String(ports.server),
    '-data-dir',
    join(dir.path, 'data'),
    '-log-level',
    'warn',
    // 1.8 spells the bootstrap token `master` (renamed `initial_management` in 1.11).
    ...(opts.tls && ports.https
      ? [
          '-https-port',
          String(ports.https),
          '-hcl',
          `ca_file = "${opts.tls.caFile}"`,
          '-hcl',
          `cert_file = "${opts.tls.serverCertFile}"`,
          '-hcl',
          `key_file = "${opts.tls.serverKeyFile}"`,
          '-hcl',
          'verify_incoming_https = true',
        ]
      : []),
    ...(opts.aclMasterToken ? ['-hcl', `acl { enabled = true, default_policy = "deny", tokens { master = "${opts.aclMasterToken}" } }`] : []),
  ];

  const call = async (method: string, path: string, body?: unknown, query?: Record<string, string>): Promise<string> => {
    const res = await client.request(method, path, { body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body), query });
    ConsulClient.expect(res, `test consul ${method} ${path}`);
    return res.body;
  };

  const logTail = async (lines = 30): Promise<string> => {
    const text = await readFile(logFile, 'utf8').catch(() => '');
    return text.split('\n').slice(-lines).join('\n');
  };

  const start = async (): Promise<void> => {
    const fd = openSync(logFile, 'a');
    const proc = spawn(bin, args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child = proc;
    exited = new Promise((r) => proc.once('exit', () => r()));
    proc.once('exit', () => {
      if (child === proc) child = undefined;
    });
    // Ready = a leader is elected and a KV write goes through (dev mode takes ~1 s).
    await waitUntil(
      async () => {
        if (!child) throw new Error('consul exited during start-up');
        const res = await client.request('PUT', '/v1/kv/consul-xds-test/ready', { body: 'ok', timeoutMs: 2000 });
        return res.status === 200 && res.body.trim() === 'true';
      },
      { what: `consul agent on ${address} to accept writes`, timeoutMs: 30_000, intervalMs: 100, context: () => logTail() },
    );
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  };

  await start();

  return {
    address,
    ports,
    client,
    get running() {
      return child !== undefined;
    },
    async kvPut(key, value) {
      await call('PUT', kvPath(key), value);
    },
    async kvDelete(key) {
      await call('DELETE', kvPath(key));
    },
    async registerService(service) {
      await call('PUT', '/v1/agent/service/register', service);
    },
    async deregisterService(id) {
      await call('PUT', `/v1/agent/service/deregister/${encodeURIComponent(id)}`);
    },
    async ttl(checkId, state, note) {
      await call('PUT', `/v1/agent/check/${state}/${encodeURIComponent(checkId)}`, undefined, note ? { note } : undefined);
    },
    async serviceMaintenance(serviceId, enable, reason) {
      await call('PUT', `/v1/agent/service/maintenance/${encodeURIComponent(serviceId)}`, undefined, { enable: String(enable), ...(reason ? { reason } : {}) });
    },
    async catalogRegister(e) {
      await call('PUT', '/v1/catalog/register', {
        Node: e.node,
        Address: e.address,
        NodeMeta: e.nodeMeta,
        Service: {
          ID: e.service.id,
          Service: e.service.name,
          Port: e.service.port,
          Address: e.service.address,
          Meta: e.service.meta,
          Weights: e.service.weights,
        },
        Check: { CheckID: `${e.service.id}-check`, Name: `${e.service.id} check`, Status: e.status, Output: e.output ?? '', ServiceID: e.service.id },
      });
    },
    async catalogDeregister(node) {
      await call('PUT', '/v1/catalog/deregister', { Node: node });
    },
    stop,
    start,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await stop();
      client.close();
      await dir.remove();
    },
    logTail,
  };
}
