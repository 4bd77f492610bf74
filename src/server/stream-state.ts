/**
 * What the server knows about one connected xDS stream: who it is (node, user agent, since
 * when) and, per resource type, what the client subscribed to, what it was sent, what it ACKed
 * or NACKed. The session (stream-session.ts) mutates it; the registry lists it and turns it into
 * frozen JSON-ready status objects for admin and health endpoints.
 */
import { isFullStateType, TYPE_ORDER, TYPE_SHORT, type XdsTypeUrl } from '../xds/resource-types.js';
import type { SnapshotResource, TypeShort, TypeSnapshot } from '../cache/snapshot.js';
import type { NodeInfo } from '../cache/node-info.js';
import { NO_NAMES, type Subscription } from './subscriptions.js';

/** Which RPC a stream came in on: ADS, or one of the per-type SotW services. */
export type StreamMethod = 'ADS' | TypeShort;

export interface NackRecord {
  /** The version the client rejected (the server will not send it again on this stream). */
  readonly version: string;
  readonly code: number;
  readonly message: string;
  /** When it was (last) rejected, ISO 8601. */
  readonly at: string;
  /** How many NACKs of this same version and message in a row. */
  readonly count: number;
}

export interface TypeStatus {
  readonly typeUrl: XdsTypeUrl;
  readonly type: TypeShort;
  /** Wildcard subscription (LDS/CDS with no names, or '*'). */
  readonly wildcard: boolean;
  /** Explicitly subscribed names, sorted. */
  readonly names: readonly string[];
  readonly sentVersion?: string;
  readonly ackedVersion?: string;
  /** Nonce of a response not yet answered by the client. */
  readonly pendingNonce?: string;
  readonly lastNack?: NackRecord;
  /** True when the latest answered response was NACKed (false once a later one is ACKed). */
  readonly lastResponseNacked: boolean;
  readonly responses: number;
  readonly acks: number;
  readonly nacks: number;
}

export interface StreamStatus {
  readonly id: number;
  readonly method: StreamMethod;
  readonly peer: string;
  readonly nodeId: string;
  readonly nodeCluster: string;
  /** `name/version` of the client, e.g. `envoy/1.31.2`. */
  readonly userAgent: string;
  /** Snapshot group the stream is served from. */
  readonly group: string;
  readonly connectedAt: string;
  readonly types: readonly TypeStatus[];
}

/** Per-type protocol state of one stream. Fields are the session's working memory. */
export class TypeState {
  readonly full: boolean;
  /** A request for this type has been seen. */
  subscribed = false;
  wildcard = false;
  /** Explicitly subscribed names (interned; see subscriptions.ts). */
  sub: Subscription = NO_NAMES;
  /** resource_names bytes of the last request: an equal next request skips all name handling. */
  namesRaw: Buffer | undefined;
  /** Names subscribed since the last evaluation: answered even if unchanged (or absent). */
  readonly added = new Set<string>();
  /** Warming: next-stage names to re-send even though the client has them (unfiltered). */
  warms: readonly string[] | undefined;
  /** A request must get an answer even if it carries nothing new (first request, new names). */
  answerDue = false;
  /** Something may have to be sent: evaluate at the next flush. */
  dirty = false;
  /** The type snapshot whose content the client holds for its subscribed names. */
  base: TypeSnapshot | undefined;
  /** Full-state types: the type snapshot last ACKed (the client falls back to it on NACK). */
  acked: TypeSnapshot | undefined;
  /** RDS/EDS names whose content on the client is unknown (rejected, or sent during a NACK). */
  stale: Set<string> | undefined;
  /** Resources in the latest response (rolled back on NACK). */
  lastSent: readonly SnapshotResource[] = [];
  nonce: string | undefined;
  /** The nonce's sequence number; nonces only grow per stream and type. */
  nonceSeq = 0;
  /** The response with `nonce` has not been answered yet. */
  outstanding = false;
  sentVersion: string | undefined;
  ackedVersion: string | undefined;
  /** A version the client rejected; not sent again until the type moves on. */
  nackedVersion: string | undefined;
  /** The snapshot version this type was last evaluated against (sent, or nothing to send). */
  evaluatedVersion: string | undefined;
  lastNack: NackRecord | undefined;
  lastResponseNacked = false;
  responses = 0;
  acks = 0;
  nacks = 0;

  constructor(readonly typeUrl: XdsTypeUrl) {
    this.full = isFullStateType(typeUrl);
  }

  status(): TypeStatus {
    return Object.freeze({
      typeUrl: this.typeUrl,
      type: TYPE_SHORT[this.typeUrl],
      wildcard: this.wildcard,
      names: this.sub.list,
      ...(this.sentVersion !== undefined ? { sentVersion: this.sentVersion } : {}),
      ...(this.ackedVersion !== undefined ? { ackedVersion: this.ackedVersion } : {}),
      ...(this.outstanding && this.nonce !== undefined ? { pendingNonce: this.nonce } : {}),
      ...(this.lastNack ? { lastNack: this.lastNack } : {}),
      lastResponseNacked: this.lastResponseNacked,
      responses: this.responses,
      acks: this.acks,
      nacks: this.nacks,
    });
  }
}

/** The registry's view of a stream; `group` and `wake` are supplied by the session. */
export class StreamRecord {
  node: NodeInfo | undefined;
  readonly types = new Map<XdsTypeUrl, TypeState>();
  readonly connectedAt = new Date().toISOString();

  constructor(
    readonly id: number,
    readonly method: StreamMethod,
    readonly peer: string,
    private readonly groupOf: () => string,
  ) {}

  get nodeId(): string {
    return this.node?.id ?? '';
  }

  get group(): string {
    return this.groupOf();
  }

  /** The state for a type, created on first use. */
  state(typeUrl: XdsTypeUrl): TypeState {
    let st = this.types.get(typeUrl);
    if (!st) {
      st = new TypeState(typeUrl);
      this.types.set(typeUrl, st);
    }
    return st;
  }

  status(): StreamStatus {
    const node = this.node;
    const types: TypeStatus[] = [];
    for (const t of TYPE_ORDER) {
      const st = this.types.get(t);
      if (st?.subscribed) types.push(st.status());
    }
    return Object.freeze({
      id: this.id,
      method: this.method,
      peer: this.peer,
      nodeId: node?.id ?? '',
      nodeCluster: node?.cluster ?? '',
      userAgent: node ? [node.userAgentName, node.userAgentVersion].filter((s) => s !== '').join('/') : '',
      group: this.group,
      connectedAt: this.connectedAt,
      types: Object.freeze(types),
    });
  }
}
