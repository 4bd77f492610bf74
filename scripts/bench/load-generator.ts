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
 * the clusters and RDS for the route configurations it was sent, an ACK for every response, the
 * new EDS/RDS subscription sent before the CDS/LDS ACK. It speaks SotW (SotwClient: version_info
 * + nonce ACKs, full name lists) or Delta (DeltaClient: DeltaAggregatedResources, legacy wildcard
 * as Envoy sends it, resource_names_subscribe / _unsubscribe as the cluster and route sets change,
 * nonce-only ACKs), as the start message says. It speaks gRPC framing by hand and parses responses
 * minimally (wire.ts) so the clients' CPU cost, which is taken from the same two cores as the
 * server's, stays small. A server that answers UNIMPLEMENTED is reported as not supporting the
 * protocol, not as a failure.
 */
import http2 from 'node:http2';
import { TypeUrl } from '../../src/xds/resource-types.js';
import type { ArmMessage, ChangeMessage, FromLoadGenerator, Protocol, StartMessage, ToLoadGenerator } from './ipc.js';
import {
  GrpcMessageReader,
  decodeDeltaResponseHead,
  decodeResponseHead,
  deltaResourceAny,
  deltaResourceName,
  encodeDeltaRequest,
  encodeRequest,
  encodeResourceNames,
  grpcFrame,
  listenerRouteNames,
  resourceName,
  responseResources,
  type ResponseHead,
} from './wire.js';

const PATHS: Readonly<Record<Protocol, string>> = {
  sotw: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
  delta: '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources',
};
const ALL_TYPES = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration] as const;
/** The type whose response names the subscription of another (CDS -> EDS, LDS -> RDS). */
const NEXT_STAGE: Readonly<Record<string, string>> = {
  [TypeUrl.Cluster]: TypeUrl.ClusterLoadAssignment,
  [TypeUrl.Listener]: TypeUrl.RouteConfiguration,
};
const GRPC_UNIMPLEMENTED = '12';
const NO_NAMES = Buffer.alloc(0);

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

/**
 * One copy of each resource name for all clients: Delta clients keep the names they hold, and a
 * thousand clients holding a thousand freshly decoded copies each would be memory the load
 * generator takes from the machine the server runs on.
 */
const interned = new Map<string, string>();

function intern(name: string): string {
  const known = interned.get(name);
  if (known !== undefined) return known;
  interned.set(name, name);
  return name;
}

/** What the current change expects, and what each client has seen of it. */
interface Armed {
  readonly change: number;
  /** type URL -> the new type version (SotW clients wait for it). */
  readonly expectVersion: ReadonlyMap<string, string>;
  /** type URL -> the changed resource names (Delta clients wait for each). */
  readonly expectNames: ReadonlyMap<string, ReadonlySet<string>>;
  readonly received: Map<string, Array<number | null>>;
  /** Delta: per type, per client, the expected names not received yet (made on first need). */
  readonly namesLeft: Map<string, Array<Set<string> | undefined>>;
  readonly acked: Array<number | null>;
  readonly pending: Array<number>;
  remaining: number;
  responses: number;
  readonly cpu: NodeJS.CpuUsage;
  timer: NodeJS.Timeout;
}

let armed: Armed | undefined;
let onReady: ((index: number) => void) | undefined;
/** Running totals over all clients, read by the driver's tally before and after each change. */
let totalBytes = 0;
let totalResponses = 0;
let unsupported = false;

/** Client `index` has all of `typeUrl`'s change (received at `at`, ACKed at `ackedAt`). */
function markReceived(a: Armed, index: number, typeUrl: string, at: number, ackedAt: number): void {
  const received = a.received.get(typeUrl);
  if (!received || received[index] !== null) return;
  received[index] = at;
  const pending = (a.pending[index] ?? 0) - 1;
  a.pending[index] = pending;
  if (pending === 0) {
    a.acked[index] = ackedAt;
    if (--a.remaining === 0) finishChange(a);
  }
}

/**
 * The HTTP/2 connection, the gRPC framing and the bookkeeping every simulated client shares;
 * the protocol's requests and responses are the subclass's.
 */
abstract class SimClient {
  readonly #reader = new GrpcMessageReader();
  readonly #seen = new Set<string>();
  #session?: http2.ClientHttp2Session;
  #stream?: http2.ClientHttp2Stream;
  #ready = false;
  /** The node is sent on a stream's first request only, as Envoy does. */
  #first = true;

  constructor(
    /** Position in this process (the index into every per-client array). */
    readonly index: number,
    /** Position over all load-generator processes (the node id). */
    readonly id: number,
    private readonly port: number,
    private readonly path: string,
  ) {}

  abstract versionOf(typeUrl: string): string;
  /** Resources of the type the client holds (SotW: in the last response). */
  abstract heldCount(typeUrl: string): number;
  /** The first requests of the stream. */
  protected abstract open(): void;
  /** Act on one response; `at` is when it arrived. */
  protected abstract onResponse(bytes: Buffer, at: number): void;

  start(): void {
    const session = http2.connect(`http://127.0.0.1:${this.port}`);
    this.#session = session;
    session.on('error', (err) => fail(`client ${this.id}: connection error: ${err.message}`));
    const stream = session.request({
      ':method': 'POST',
      ':path': this.path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = this.#reader.push(chunk);
      } catch (err) {
        fail(`client ${this.id}: ${(err as Error).message}`);
        return;
      }
      for (const m of messages) {
        totalBytes += m.length;
        totalResponses++;
        if (armed) armed.responses++;
        this.onResponse(m, nowMs());
      }
    });
    // A server without the method answers with headers that end the stream (trailers-only).
    stream.on('response', (headers) => this.#onStatus(headers));
    stream.on('trailers', (headers) => this.#onStatus(headers));
    stream.on('error', (err) => {
      if (!stopping) fail(`client ${this.id}: stream error: ${err.message}`);
    });
    this.open();
  }

  close(): void {
    this.#stream?.close();
    this.#session?.close();
  }

  protected node(): { id: string; cluster: string } | undefined {
    if (!this.#first) return undefined;
    this.#first = false;
    return { id: `bench-client-${this.id}`, cluster: 'bench' };
  }

  protected write(message: Buffer): void {
    this.#stream?.write(grpcFrame(message));
  }

  /** After each response: reports readiness once every type has answered. */
  protected responded(typeUrl: string): void {
    if (this.#ready) return;
    this.#seen.add(typeUrl);
    if (this.#seen.size === ALL_TYPES.length) {
      this.#ready = true;
      onReady?.(this.index);
    }
  }

  #onStatus(headers: http2.IncomingHttpHeaders): void {
    const status = headers['grpc-status'];
    if (status === undefined || stopping) return;
    const message = String(headers['grpc-message'] ?? '');
    if (status === GRPC_UNIMPLEMENTED) reportUnsupported(message);
    else fail(`client ${this.id}: stream ended by the server: grpc-status ${String(status)} ${message}`);
  }
}

interface SotwTypeState {
  version: string;
  nonce: string;
  /** Subscribed names; empty = wildcard (CDS, LDS). */
  names: readonly string[];
  /** The same, encoded for requests. */
  namesBytes: Buffer;
  /** Resources in the last response. */
  count: number;
}

/** StreamAggregatedResources: every response is a type's state of the world (CDS, LDS) or its named part. */
class SotwClient extends SimClient {
  readonly #types = new Map<string, SotwTypeState>();

  constructor(index: number, id: number, port: number) {
    super(index, id, port, PATHS.sotw);
    for (const t of ALL_TYPES) this.#types.set(t, { version: '', nonce: '', names: [], namesBytes: NO_NAMES, count: 0 });
  }

  versionOf(typeUrl: string): string {
    return this.#types.get(typeUrl)?.version ?? '';
  }

  heldCount(typeUrl: string): number {
    return this.#types.get(typeUrl)?.count ?? 0;
  }

  protected open(): void {
    this.#request(TypeUrl.Cluster);
    this.#request(TypeUrl.Listener);
  }

  #request(typeUrl: string): void {
    const state = this.#types.get(typeUrl);
    if (!state) return;
    const node = this.node();
    this.write(
      encodeRequest({
        versionInfo: state.version,
        typeUrl,
        responseNonce: state.nonce,
        resourceNames: state.namesBytes,
        ...(node ? { node } : {}),
      }),
    );
  }

  protected onResponse(bytes: Buffer, at: number): void {
    let head: ResponseHead;
    try {
      head = decodeResponseHead(bytes);
    } catch (err) {
      fail(`client ${this.id}: undecodable DiscoveryResponse: ${(err as Error).message}`);
      return;
    }
    const state = this.#types.get(head.typeUrl);
    if (!state) {
      fail(`client ${this.id}: response of a type it never asked for: ${head.typeUrl}`);
      return;
    }
    state.version = head.versionInfo;
    state.nonce = head.nonce;
    state.count = head.resourceCount;

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

    if (armed?.expectVersion.get(head.typeUrl) === head.versionInfo) markReceived(armed, this.index, head.typeUrl, at, ackedAt);
    this.responded(head.typeUrl);
  }
}

/**
 * DeltaAggregatedResources, as Envoy speaks it: CDS and LDS by legacy wildcard (a first request
 * without names), EDS and RDS subscribed and unsubscribed by name as clusters and listeners come
 * and go, every response ACKed by its nonce alone. The client keeps the names it holds per type.
 */
class DeltaClient extends SimClient {
  readonly #held = new Map<string, Set<string>>(ALL_TYPES.map((t) => [t, new Set<string>()]));
  /** EDS and RDS: the names subscribed to. */
  readonly #subscribed = new Map<string, Set<string>>([
    [TypeUrl.ClusterLoadAssignment, new Set<string>()],
    [TypeUrl.RouteConfiguration, new Set<string>()],
  ]);
  /** Listener name -> the RouteConfiguration names it uses. */
  readonly #routesOf = new Map<string, readonly string[]>();

  constructor(index: number, id: number, port: number) {
    super(index, id, port, PATHS.delta);
  }

  versionOf(): string {
    return '';
  }

  heldCount(typeUrl: string): number {
    return this.#held.get(typeUrl)?.size ?? 0;
  }

  protected open(): void {
    this.#request(TypeUrl.Cluster, '', NO_NAMES, NO_NAMES);
    this.#request(TypeUrl.Listener, '', NO_NAMES, NO_NAMES);
  }

  #request(typeUrl: string, responseNonce: string, subscribe: Buffer, unsubscribe: Buffer): void {
    const node = this.node();
    this.write(encodeDeltaRequest({ typeUrl, responseNonce, subscribe, unsubscribe, ...(node ? { node } : {}) }));
  }

  protected onResponse(bytes: Buffer, at: number): void {
    let typeUrl: string;
    let nonce: string;
    let names: string[];
    let removed: readonly string[];
    let listeners: Array<[string, Uint8Array]> = [];
    try {
      const head = decodeDeltaResponseHead(bytes);
      typeUrl = head.typeUrl;
      nonce = head.nonce;
      removed = head.removed;
      names = head.resources.map((r) => intern(deltaResourceName(r)));
      if (typeUrl === TypeUrl.Listener) listeners = head.resources.map((r, i) => [names[i] ?? '', deltaResourceAny(r)]);
    } catch (err) {
      fail(`client ${this.id}: undecodable DeltaDiscoveryResponse: ${(err as Error).message}`);
      return;
    }
    const held = this.#held.get(typeUrl);
    if (!held) {
      fail(`client ${this.id}: response of a type it never asked for: ${typeUrl}`);
      return;
    }
    for (const n of names) held.add(n);
    for (const n of removed) held.delete(n);

    // Like Envoy: clusters (listeners) change their EDS (RDS) subscriptions before the ACK.
    if (typeUrl === TypeUrl.Cluster) this.#resubscribe(TypeUrl.ClusterLoadAssignment, held);
    else if (typeUrl === TypeUrl.Listener) {
      for (const [name, any] of listeners) this.#routesOf.set(name, listenerRouteNames(any).map(intern));
      for (const name of removed) this.#routesOf.delete(name);
      this.#resubscribe(TypeUrl.RouteConfiguration, new Set([...this.#routesOf.values()].flat()));
    }
    this.#request(typeUrl, nonce, NO_NAMES, NO_NAMES);
    const ackedAt = nowMs();

    const a = armed;
    const expected = a?.expectNames.get(typeUrl);
    if (a && expected) this.#record(a, typeUrl, expected, names, at, ackedAt);
    this.responded(typeUrl);
  }

  /** Subscribe to the names in `wanted` not subscribed yet, unsubscribe from those no longer in it. */
  #resubscribe(typeUrl: string, wanted: ReadonlySet<string>): void {
    const subscribed = this.#subscribed.get(typeUrl);
    if (!subscribed) return;
    const add = [...wanted].filter((n) => !subscribed.has(n));
    const drop = [...subscribed].filter((n) => !wanted.has(n));
    if (add.length === 0 && drop.length === 0) return;
    for (const n of add) subscribed.add(n);
    for (const n of drop) subscribed.delete(n);
    this.#request(typeUrl, '', encodeResourceNames(add, 3), encodeResourceNames(drop, 4));
  }

  #record(a: Armed, typeUrl: string, expected: ReadonlySet<string>, names: readonly string[], at: number, ackedAt: number): void {
    let perClient = a.namesLeft.get(typeUrl);
    if (!perClient) {
      perClient = [];
      a.namesLeft.set(typeUrl, perClient);
    }
    let left = perClient[this.index];
    if (!left) {
      left = new Set(expected);
      perClient[this.index] = left;
    }
    for (const n of names) left.delete(n);
    if (left.size === 0) markReceived(a, this.index, typeUrl, at, ackedAt);
  }
}

let clients: SimClient[] = [];
let stopping = false;

function fail(message: string): void {
  if (stopping || unsupported) return;
  send({ kind: 'error', message });
}

/** Once per process: the driver stops this load generator and reports the protocol unsupported. */
function reportUnsupported(message: string): void {
  if (unsupported) return;
  unsupported = true;
  send({ kind: 'unsupported', status: 'UNIMPLEMENTED', message });
}

function start(msg: StartMessage): void {
  baseNs = BigInt(msg.baseNs);
  send({ kind: 'started', receivedMs: nowMs() });
  clients = Array.from({ length: msg.clients }, (_, i) =>
    msg.protocol === 'delta' ? new DeltaClient(i, msg.firstClient + i, msg.port) : new SotwClient(i, msg.firstClient + i, msg.port),
  );
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
      send({ kind: 'ready', clients: ready, readyAtMs: nowMs(), ...commonState() });
    }
  };
  for (let i = 0; i < Math.min(msg.connectConcurrency, clients.length); i++) launch();
}

/** Per type, what every client holds: the version ('mixed' where they disagree) and the resource count (-1). */
function commonState(): { versions: Record<string, string>; counts: Record<string, number> } {
  const versions: Record<string, string> = {};
  const counts: Record<string, number> = {};
  for (const t of ALL_TYPES) {
    const first = clients[0]?.versionOf(t) ?? '';
    versions[t] = clients.every((c) => c.versionOf(t) === first) ? first : 'mixed';
    const count = clients[0]?.heldCount(t) ?? 0;
    counts[t] = clients.every((c) => c.heldCount(t) === count) ? count : -1;
  }
  return { versions, counts };
}

function arm(msg: ArmMessage): void {
  if (armed) clearTimeout(armed.timer);
  const n = clients.length;
  const expect = Object.entries(msg.expect);
  const a: Armed = {
    change: msg.change,
    expectVersion: new Map(expect.map(([t, e]) => [t, e.version])),
    expectNames: new Map(expect.map(([t, e]) => [t, new Set(e.names)])),
    received: new Map(expect.map(([t]) => [t, new Array<number | null>(n).fill(null)])),
    namesLeft: new Map(),
    acked: new Array<number | null>(n).fill(null),
    pending: new Array<number>(n).fill(expect.length),
    remaining: n,
    responses: 0,
    cpu: process.cpuUsage(),
    timer: setTimeout(() => finishChange(a), msg.timeoutMs),
  };
  armed = a;
  send({ kind: 'armed', change: msg.change });
  if (expect.length === 0) finishChange(a);
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
  else if (msg.kind === 'tally') send({ kind: 'tally', bytes: totalBytes, responses: totalResponses });
  else if (msg.kind === 'stop') stop();
});
// The driver going away (crash, timeout) must not leave a thousand connections open.
process.on('disconnect', () => {
  if (!stopping) stop();
});
