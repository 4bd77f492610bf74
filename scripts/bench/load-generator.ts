/**
 * The fan-out benchmark's load generator: a child process (fork()ed by scripts/bench-fanout.ts)
 * that runs N simulated ADS clients against one xDS server on 127.0.0.1.
 *
 * In: IPC messages from the driver (ipc.ts): start (port, N), arm (the versions the next change
 * will carry), stop. Out: IPC reports: started (clock check), ready (all N hold and have ACKed the
 * initial snapshot), armed, and per change the time each client received each new version and
 * when it had ACKed them all.
 *
 * Each client behaves like Envoy on one ADS stream: its own HTTP/2 connection (node:http2, one
 * session per client, so the server sees N TCP connections), wildcard CDS and LDS, then EDS for
 * the clusters and RDS for the route configurations it was sent, an ACK (version_info + nonce) for
 * every response, the new EDS/RDS subscription sent before the CDS/LDS ACK. It speaks gRPC
 * framing by hand and parses responses minimally (wire.ts) so the clients' CPU cost, which is
 * taken from the same two cores as the server's, stays small.
 */
import http2 from 'node:http2';
import { TypeUrl } from '../../src/xds/resource-types.js';
import type { ArmMessage, ChangeMessage, FromLoadGenerator, StartMessage, ToLoadGenerator } from './ipc.js';
import {
  GrpcMessageReader,
  decodeResponseHead,
  encodeRequest,
  encodeResourceNames,
  grpcFrame,
  listenerRouteNames,
  resourceName,
  responseResources,
  type ResponseHead,
} from './wire.js';

const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const ALL_TYPES = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration] as const;
/** The type whose response names the subscription of another (CDS -> EDS, LDS -> RDS). */
const NEXT_STAGE: Readonly<Record<string, string>> = {
  [TypeUrl.Cluster]: TypeUrl.ClusterLoadAssignment,
  [TypeUrl.Listener]: TypeUrl.RouteConfiguration,
};

let baseNs = 0n;

/** Milliseconds since the driver's base (see ipc.ts for why this clock). */
function nowMs(): number {
  return Number(process.hrtime.bigint() - baseNs) / 1e6;
}

function send(message: FromLoadGenerator): void {
  process.send?.(message);
}

/**
 * Names the next stage subscribes to, per (type, version). Every client is sent the same
 * resources for the same version, so one parse serves all of them; the resource count is part of
 * the key as a guard against a server that sends different sets under one version.
 */
const namesCache = new Map<string, readonly string[]>();

function nextStageNames(head: ResponseHead, bytes: Buffer): readonly string[] {
  const key = `${head.typeUrl}\n${head.versionInfo}\n${head.resourceCount}`;
  let names = namesCache.get(key);
  if (!names) {
    const found = new Set<string>();
    for (const any of responseResources(bytes)) {
      if (head.typeUrl === TypeUrl.Listener) for (const n of listenerRouteNames(any)) found.add(n);
      else found.add(resourceName(any));
    }
    names = [...found].sort();
    namesCache.set(key, names);
  }
  return names;
}

interface TypeState {
  version: string;
  nonce: string;
  /** Subscribed names; empty = wildcard (CDS, LDS). */
  names: readonly string[];
  /** The same, encoded for requests. */
  namesBytes: Buffer;
  responses: number;
}

/** What the current change expects, and what each client has seen of it. */
interface Armed {
  readonly change: number;
  readonly expect: ReadonlyMap<string, string>;
  readonly received: Map<string, Array<number | null>>;
  readonly acked: Array<number | null>;
  readonly pending: Array<number>;
  remaining: number;
  responses: number;
  readonly cpu: NodeJS.CpuUsage;
  timer: NodeJS.Timeout;
}

let armed: Armed | undefined;
let onReady: ((index: number) => void) | undefined;

class SimClient {
  readonly #types = new Map<string, TypeState>();
  readonly #reader = new GrpcMessageReader();
  #session?: http2.ClientHttp2Session;
  #stream?: http2.ClientHttp2Stream;
  #first = true;
  #ready = false;

  constructor(
    readonly index: number,
    private readonly port: number,
  ) {
    for (const t of ALL_TYPES) this.#types.set(t, { version: '', nonce: '', names: [], namesBytes: Buffer.alloc(0), responses: 0 });
  }

  versionOf(typeUrl: string): string {
    return this.#types.get(typeUrl)?.version ?? '';
  }

  start(): void {
    const session = http2.connect(`http://127.0.0.1:${this.port}`);
    this.#session = session;
    session.on('error', (err) => fail(`client ${this.index}: connection error: ${err.message}`));
    const stream = session.request({
      ':method': 'POST',
      ':path': ADS_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = this.#reader.push(chunk);
      } catch (err) {
        fail(`client ${this.index}: ${(err as Error).message}`);
        return;
      }
      for (const m of messages) this.#onResponse(m);
    });
    stream.on('trailers', (headers) => {
      if (!stopping)
        fail(`client ${this.index}: stream ended by the server: grpc-status ${String(headers['grpc-status'])} ${String(headers['grpc-message'] ?? '')}`);
    });
    stream.on('error', (err) => {
      if (!stopping) fail(`client ${this.index}: stream error: ${err.message}`);
    });
    this.#request(TypeUrl.Cluster);
    this.#request(TypeUrl.Listener);
  }

  close(): void {
    this.#stream?.close();
    this.#session?.close();
  }

  #request(typeUrl: string): void {
    const state = this.#types.get(typeUrl);
    if (!state || !this.#stream) return;
    const node = this.#first ? { id: `bench-client-${this.index}`, cluster: 'bench' } : undefined;
    this.#first = false;
    this.#stream.write(
      grpcFrame(
        encodeRequest({
          versionInfo: state.version,
          typeUrl,
          responseNonce: state.nonce,
          resourceNames: state.namesBytes,
          ...(node ? { node } : {}),
        }),
      ),
    );
  }

  #onResponse(bytes: Buffer): void {
    const at = nowMs();
    let head: ResponseHead;
    try {
      head = decodeResponseHead(bytes);
    } catch (err) {
      fail(`client ${this.index}: undecodable DiscoveryResponse: ${(err as Error).message}`);
      return;
    }
    const state = this.#types.get(head.typeUrl);
    if (!state) {
      fail(`client ${this.index}: response of a type it never asked for: ${head.typeUrl}`);
      return;
    }
    state.version = head.versionInfo;
    state.nonce = head.nonce;
    state.responses++;

    // Like Envoy: clusters (listeners) create their EDS (RDS) subscriptions before the ACK.
    const nextType = NEXT_STAGE[head.typeUrl];
    if (nextType !== undefined) {
      const next = this.#types.get(nextType);
      const names = nextStageNames(head, bytes);
      if (next && names !== next.names && names.join('\n') !== next.names.join('\n')) {
        next.names = names;
        next.namesBytes = encodeResourceNames(names);
        this.#request(nextType);
      }
    }
    this.#request(head.typeUrl);
    const ackedAt = nowMs();

    if (armed) this.#record(armed, head, at, ackedAt);
    if (!this.#ready && ALL_TYPES.every((t) => (this.#types.get(t)?.responses ?? 0) > 0)) {
      this.#ready = true;
      onReady?.(this.index);
    }
  }

  #record(a: Armed, head: ResponseHead, at: number, ackedAt: number): void {
    a.responses++;
    if (a.expect.get(head.typeUrl) !== head.versionInfo) return;
    const received = a.received.get(head.typeUrl);
    if (!received || received[this.index] !== null) return;
    received[this.index] = at;
    const pending = (a.pending[this.index] ?? 0) - 1;
    a.pending[this.index] = pending;
    if (pending === 0) {
      a.acked[this.index] = ackedAt;
      if (--a.remaining === 0) finishChange(a);
    }
  }
}

let clients: SimClient[] = [];
let stopping = false;

function fail(message: string): void {
  if (stopping) return;
  send({ kind: 'error', message });
}

function start(msg: StartMessage): void {
  baseNs = BigInt(msg.baseNs);
  send({ kind: 'started', clockSkewMs: nowMs() - msg.sentMs });
  clients = Array.from({ length: msg.clients }, (_, i) => new SimClient(i, msg.port));
  let next = 0;
  let ready = 0;
  const deadline = setTimeout(
    () => fail(`only ${ready} of ${msg.clients} clients got the initial snapshot within ${msg.readyTimeoutMs} ms`),
    msg.readyTimeoutMs,
  );
  const launch = () => {
    const c = clients[next++];
    c?.start();
  };
  onReady = () => {
    ready++;
    if (next < clients.length) launch();
    if (ready === clients.length) {
      clearTimeout(deadline);
      onReady = undefined;
      send({ kind: 'ready', clients: ready, readyAtMs: nowMs(), versions: commonVersions() });
    }
  };
  for (let i = 0; i < Math.min(msg.connectConcurrency, clients.length); i++) launch();
}

function commonVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of ALL_TYPES) {
    const first = clients[0]?.versionOf(t) ?? '';
    out[t] = clients.every((c) => c.versionOf(t) === first) ? first : 'mixed';
  }
  return out;
}

function arm(msg: ArmMessage): void {
  if (armed) clearTimeout(armed.timer);
  const n = clients.length;
  const expect = new Map(Object.entries(msg.expect));
  const a: Armed = {
    change: msg.change,
    expect,
    received: new Map([...expect.keys()].map((t) => [t, new Array<number | null>(n).fill(null)])),
    acked: new Array<number | null>(n).fill(null),
    pending: new Array<number>(n).fill(expect.size),
    remaining: n,
    responses: 0,
    cpu: process.cpuUsage(),
    timer: setTimeout(() => finishChange(a), msg.timeoutMs),
  };
  armed = a;
  send({ kind: 'armed', change: msg.change });
  if (expect.size === 0) finishChange(a);
}

function finishChange(a: Armed): void {
  if (armed !== a) return;
  clearTimeout(a.timer);
  armed = undefined;
  const cpu = process.cpuUsage(a.cpu);
  const report: ChangeMessage = {
    kind: 'change',
    change: a.change,
    received: Object.fromEntries(a.received),
    acked: a.acked,
    missing: a.remaining,
    responses: a.responses,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  send(report);
}

function stop(): void {
  stopping = true;
  if (armed) clearTimeout(armed.timer);
  for (const c of clients) c.close();
  if (process.connected) process.disconnect();
  // Sessions close asynchronously; don't let a slow server keep this process alive.
  setTimeout(() => process.exit(0), 2000).unref();
}

process.on('message', (raw: unknown) => {
  const msg = raw as ToLoadGenerator;
  if (msg.kind === 'start') start(msg);
  else if (msg.kind === 'arm') arm(msg);
  else if (msg.kind === 'stop') stop();
});
// The driver going away (crash, timeout) must not leave a thousand connections open.
process.on('disconnect', () => {
  if (!stopping) stop();
});
