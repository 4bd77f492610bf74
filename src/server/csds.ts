/**
 * Client Status Discovery Service (`envoy.service.status.v3.ClientStatusDiscoveryService`):
 * `FetchClientStatus` and `StreamClientStatus`, served on the xDS port, so standard tooling
 * (grpcurl, any CSDS client, `consul-xds status --csds`) can ask what each node holds.
 *
 * In: ClientStatusRequests; the stream registry (what every stream subscribed to, was sent,
 * ACKed or NACKed) and the snapshot cache (what its group is served). Out: one ClientConfig per
 * connected node that the request's node matchers select (all when none), with `client_scope`
 * set to the node group it is served from and, per resource, a `generic_xds_configs` entry:
 * `type_url`, `name`, `client_status` and `version_info` (the version the client last ACKed for
 * that type), `error_state` for a NACK, and the resource itself as `xds_config` when the client
 * is known to hold exactly what the cache has (its type ACKed and up to date) unless the request
 * sets `exclude_resource_contents`.
 *
 * Status per subscribed resource (any protocol; from the type's state on the stream):
 *   DOES_NOT_EXIST  named, and not in the group's snapshot (after the type was evaluated)
 *   REQUESTED       no answer from the client yet (nothing ACKed or NACKed on the type)
 *   NACKED          the latest answered response of the type was NACKed: `error_state` has the
 *                   rejected version, the client's message and when
 *   ACKED           otherwise
 * A SotW NACK rejects a whole response, so every resource of a NACKed type shows NACKED.
 *
 * Who may read what (with mTLS only; transport-security.ts csdsReadable): a caller sees the nodes
 * its client certificate may speak for (the xDS identity rule), every node of a group its
 * certificate names as a whole, or everything with an operator SAN (`--csds-admin-san`). Nodes
 * the request's matchers select but the caller may not read are left out, as if not connected:
 * the answer tells nothing about other fleets, not even that a node exists, and a prefix or regex
 * matcher that also catches foreign nodes still answers with the caller's own (a
 * PERMISSION_DENIED would fail the whole query, in grpcurl and `consul-xds status` alike). Such
 * answers are counted, and logged at warn once per stream (peer address and SANs, never
 * certificate bytes). Without mTLS, every caller reads every node.
 */
import { status as GrpcStatus, type Server, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData, type MethodDefinition } from '@grpc/grpc-js';
import { RE2JS } from 're2js';
import type protobuf from 'protobufjs';
import { messageType, TO_OBJECT } from '../envoy/protos.js';
import { TYPE_ORDER } from '../xds/resource-types.js';
import type { SnapshotCache } from '../cache/snapshot-cache.js';
import type { TypeSnapshot } from '../cache/snapshot.js';
import type { JsonValue, NodeInfo } from '../cache/node-info.js';
import type { StreamRegistry } from './stream-registry.js';
import type { TypeState } from './stream-state.js';
import { nodeObjectOf } from './node-codec.js';
import { baseGroup } from '../cache/client-kind.js';
import { describe, type PeerNames } from '../common/peer-identity.js';
import type { CsdsReadable, TransportSecurity } from '../common/transport-security.js';
import type { Logger } from '../log.js';

export const CSDS_SERVICE = 'envoy.service.status.v3.ClientStatusDiscoveryService';

/** ClientStatusRequest as decoded (TO_OBJECT, keepCase). */
export interface ClientStatusRequest {
  readonly node_matchers?: readonly NodeMatcher[];
  readonly exclude_resource_contents?: boolean;
}

interface StringMatcher {
  readonly exact?: string;
  readonly prefix?: string;
  readonly suffix?: string;
  readonly contains?: string;
  readonly safe_regex?: { readonly regex?: string };
  readonly ignore_case?: boolean;
}

interface NodeMatcher {
  readonly node_id?: StringMatcher;
  readonly node_metadatas?: ReadonlyArray<{
    readonly path?: ReadonlyArray<{ readonly key?: string }>;
    readonly value?: { readonly string_match?: StringMatcher; readonly bool_match?: boolean; readonly present_match?: boolean };
  }>;
}

type ClientResourceStatus = 'REQUESTED' | 'DOES_NOT_EXIST' | 'ACKED' | 'NACKED';

let anyType: protobuf.Type | undefined;

type ClientStatusResponse = { config: Record<string, unknown>[] };

/**
 * The answer to one request (a ClientStatusResponse object for protobufjs fromObject) and how
 * many nodes the matchers selected that `readable` (undefined: all) left out.
 */
export function clientStatus(
  registry: StreamRegistry,
  cache: SnapshotCache,
  req: ClientStatusRequest,
  readable?: CsdsReadable,
): { response: ClientStatusResponse; withheld: number } {
  const matchers = (req.node_matchers ?? []).map(compileNodeMatcher);
  const config: Record<string, unknown>[] = [];
  let withheld = 0;
  for (const nodeId of registry.nodes().sort()) {
    const records = [...registry.streamsOf(nodeId)];
    const node = records.find((r) => r.node !== undefined)?.node;
    if (node === undefined || (matchers.length > 0 && !matchers.some((matches) => matches(node)))) continue;
    // Every stream of the node must be readable: its streams may be served different groups.
    if (readable !== undefined && !records.every((r) => readable(nodeId, baseGroup(r.group)))) {
      withheld++;
      continue;
    }
    let group = '';
    const generic: Record<string, unknown>[] = [];
    for (const record of records) {
      group = record.group;
      const snapshot = cache.get(record.group);
      for (const t of TYPE_ORDER) {
        const st = record.types.get(t);
        if (st?.subscribed) generic.push(...typeConfigs(st, snapshot?.type(t), req.exclude_resource_contents === true));
      }
    }
    config.push({ node: nodeObjectOf(node), client_scope: group, generic_xds_configs: generic });
  }
  return { response: { config }, withheld };
}

function typeConfigs(st: TypeState, ts: TypeSnapshot | undefined, excludeContents: boolean): Record<string, unknown>[] {
  const names = st.wildcard ? [...(ts?.resources.keys() ?? [])] : st.sub.list;
  const answered = st.ackedVersion !== undefined || st.lastNack !== undefined;
  const upToDate = ts !== undefined && st.upToDate(ts.version);
  const out: Record<string, unknown>[] = [];
  for (const name of names) {
    const r = ts?.resources.get(name);
    let status: ClientResourceStatus;
    if (r === undefined) status = st.evaluatedVersion !== undefined ? 'DOES_NOT_EXIST' : 'REQUESTED';
    else if (!answered) status = 'REQUESTED';
    else status = st.lastResponseNacked ? 'NACKED' : 'ACKED';
    const nack = st.lastNack;
    out.push({
      type_url: st.typeUrl,
      name,
      client_status: status,
      version_info: st.ackedVersion ?? '',
      ...(status === 'NACKED' && nack !== undefined
        ? { error_state: { details: nack.message, version_info: nack.version, last_update_attempt: timestamp(nack.at) } }
        : {}),
      ...(status === 'ACKED' && upToDate && !excludeContents && r !== undefined ? { xds_config: asAny(r.bytes) } : {}),
    });
  }
  return out;
}

/** A SnapshotResource's encoded Any, split into the fields protobufjs packs again (no inner decode). */
function asAny(bytes: Uint8Array): { type_url: string; value: Uint8Array } {
  anyType ??= messageType('google.protobuf.Any');
  return anyType.decode(bytes) as unknown as { type_url: string; value: Uint8Array };
}

function timestamp(iso: string): { seconds: number; nanos: number } {
  const ms = Date.parse(iso);
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** A request the server cannot answer as asked (a regex that does not compile): INVALID_ARGUMENT. */
export class CsdsRequestError extends Error {}

type Predicate<T> = (value: T) => boolean;

/**
 * Envoy's NodeMatcher as a predicate: the node id matcher (if any) and every metadata matcher
 * hold. Compiled once per request; its regexes run on RE2 (linear time).
 */
function compileNodeMatcher(m: NodeMatcher, i: number): Predicate<NodeInfo> {
  const at = `node_matchers[${i}]`;
  const id = m.node_id === undefined ? undefined : compileStringMatcher(m.node_id, `${at}.node_id`);
  const metadata = (m.node_metadatas ?? []).map((sm, j) => {
    const want = sm.value;
    const text = want?.string_match === undefined ? undefined : compileStringMatcher(want.string_match, `${at}.node_metadatas[${j}].value.string_match`);
    return (node: NodeInfo): boolean => {
      let v: JsonValue | undefined = node.metadata;
      for (const seg of sm.path ?? []) {
        v = v !== null && typeof v === 'object' && !Array.isArray(v) && seg.key !== undefined ? (v as Record<string, JsonValue>)[seg.key] : undefined;
      }
      if (want?.present_match !== undefined && (v !== undefined) !== want.present_match) return false;
      if (want?.bool_match !== undefined && v !== want.bool_match) return false;
      if (text !== undefined && (typeof v !== 'string' || !text(v))) return false;
      return true;
    };
  });
  return (node) => (id === undefined || id(node.id)) && metadata.every((holds) => holds(node));
}

/**
 * Envoy's safe_regex is RE2: compiled with re2js (as the TS data plane's matchers are), so
 * matching is linear in the input and a pattern sent by any client cannot stall the event loop
 * (`(a+)+` against forty `a`s and a `!` held it for minutes with a JS RegExp). What RE2 refuses
 * (back-references, lookarounds) or cannot parse is the caller's error.
 */
function compileRe2(pattern: string, at: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (err) {
    throw new CsdsRequestError(`${at} ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
}

function compileStringMatcher(m: StringMatcher, at: string): Predicate<string> {
  const fold = (s: string) => (m.ignore_case ? s.toLowerCase() : s);
  if (m.exact !== undefined) return (v) => fold(v) === fold(m.exact as string);
  if (m.prefix !== undefined) return (v) => fold(v).startsWith(fold(m.prefix as string));
  if (m.suffix !== undefined) return (v) => fold(v).endsWith(fold(m.suffix as string));
  if (m.contains !== undefined) return (v) => fold(v).includes(fold(m.contains as string));
  if (m.safe_regex?.regex !== undefined) {
    const re = compileRe2(m.safe_regex.regex, `${at}.safe_regex.regex`);
    return (v) => re.matches(v);
  }
  return () => true;
}

let requestType: protobuf.Type | undefined;
let responseType: protobuf.Type | undefined;

function decodeRequest(bytes: Buffer): ClientStatusRequest {
  requestType ??= messageType('envoy.service.status.v3.ClientStatusRequest');
  return requestType.toObject(requestType.decode(bytes), TO_OBJECT) as ClientStatusRequest;
}

function encodeResponse(response: ClientStatusResponse): Buffer {
  responseType ??= messageType('envoy.service.status.v3.ClientStatusResponse');
  return Buffer.from(responseType.encode(responseType.fromObject(response)).finish());
}

function method(rpc: string, stream: boolean): MethodDefinition<ClientStatusRequest, ClientStatusResponse> {
  return {
    path: `/${CSDS_SERVICE}/${rpc}`,
    requestStream: stream,
    responseStream: stream,
    requestSerialize: () => {
      throw new Error('server-side method');
    },
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: () => {
      throw new Error('server-side method');
    },
  };
}

/**
 * One CSDS call: what its caller may read (read once, from the certificate of its connection),
 * and whether a left-out answer was logged yet.
 */
class CsdsCall {
  readonly #peer: PeerNames | undefined;
  readonly #readable: CsdsReadable | undefined;
  #warned = false;

  constructor(
    private readonly ctx: CsdsContext,
    private readonly call: ServerUnaryCall<ClientStatusRequest, unknown> | ServerDuplexStream<ClientStatusRequest, unknown>,
    private readonly rpc: string,
  ) {
    const security = ctx.security;
    this.#peer = security?.checksIdentity ? security.peerOf(call) : undefined;
    this.#readable = security?.csdsReadable(this.#peer);
  }

  answer(req: ClientStatusRequest): ClientStatusResponse {
    const { response, withheld } = clientStatus(this.ctx.registry, this.ctx.cache, req, this.#readable);
    // A request without matchers asks for "everything I may read": nothing was asked of others.
    if (withheld > 0 && (req.node_matchers?.length ?? 0) > 0) {
      this.ctx.security?.countCsdsWithheld();
      if (!this.#warned) {
        this.#warned = true;
        this.ctx.logger.warn(
          { rpc: this.rpc, peer: this.call.getPeer(), sans: this.#peer ? describe(this.#peer) : null, withheld, answered: response.config.length },
          `CSDS answer left out ${withheld} node(s) the request's node matchers selected but the client certificate may not read (further ones on this stream are counted, not logged)`,
        );
      }
    }
    return response;
  }
}

interface CsdsContext {
  readonly registry: StreamRegistry;
  readonly cache: SnapshotCache;
  readonly logger: Logger;
  /** TLS; with mTLS, who may read which node (transport-security.ts). */
  readonly security?: TransportSecurity;
}

/** The answer, or the request's refusal (anything else thrown is a bug and propagates). */
function refusalOr<T>(answer: () => T): T | CsdsRequestError {
  try {
    return answer();
  } catch (err) {
    if (err instanceof CsdsRequestError) return err;
    throw err;
  }
}

/** Register CSDS on the xDS gRPC server. */
export function addCsdsService(server: Server, ctx: CsdsContext): void {
  server.addService(
    { FetchClientStatus: method('FetchClientStatus', false), StreamClientStatus: method('StreamClientStatus', true) },
    {
      FetchClientStatus: (call: ServerUnaryCall<ClientStatusRequest, unknown>, callback: sendUnaryData<unknown>) => {
        const answer = refusalOr(() => new CsdsCall(ctx, call, 'FetchClientStatus').answer(call.request));
        if (answer instanceof CsdsRequestError) callback({ code: GrpcStatus.INVALID_ARGUMENT, details: answer.message });
        else callback(null, answer);
      },
      StreamClientStatus: (call: ServerDuplexStream<ClientStatusRequest, unknown>) => {
        const csds = new CsdsCall(ctx, call, 'StreamClientStatus');
        call.on('data', (req: ClientStatusRequest) => {
          const answer = refusalOr(() => csds.answer(req));
          if (!(answer instanceof CsdsRequestError)) call.write(answer);
          else call.emit('error', { code: GrpcStatus.INVALID_ARGUMENT, details: answer.message, message: answer.message });
        });
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
    },
  );
}
