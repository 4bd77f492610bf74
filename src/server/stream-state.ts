/**
 * What the server knows about one connected xDS stream, whatever its protocol: who it is (node,
 * user agent, since when) and, per resource type, what the client subscribed to, what it was
 * sent, what it ACKed or NACKed. A protocol (sotw/, delta/) keeps its own working memory in a subclass of
 * TypeState; the registry reads only what is declared here and turns it into frozen JSON-ready
 * status objects for admin and health endpoints.
 */
import { TYPE_ORDER, TYPE_SHORT, type TypeShort, type XdsTypeUrl } from '../xds/resource-types.js';
import type { NodeInfo } from '../cache/node-info.js';
import { NO_NAMES, type Subscription } from './subscriptions.js';

/** Which RPC a stream came in on: ADS, or one of the per-type services. */
export type StreamMethod = 'ADS' | TypeShort;

/** Which xDS protocol variant the stream speaks: State of the World or incremental (delta). */
export type StreamProtocol = 'sotw' | 'delta';

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
  /**
   * Explicitly subscribed names, sorted: the first MAX_STATUS_NAMES, each cut at
   * MAX_STATUS_NAME_CHARS (status output stays small whatever a client subscribes to).
   */
  readonly names: readonly string[];
  /** How many names were left out of `names` (absent when none were). */
  readonly namesOmitted?: number;
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
  readonly protocol: StreamProtocol;
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

export const MAX_STATUS_NAMES = 1000;
export const MAX_STATUS_NAME_CHARS = 256;

function statusNames(list: readonly string[]): { names: readonly string[]; namesOmitted?: number } {
  const long = (n: string) => n.length > MAX_STATUS_NAME_CHARS;
  if (list.length <= MAX_STATUS_NAMES && !list.some(long)) return { names: list };
  const names = list.slice(0, MAX_STATUS_NAMES).map((n) => (long(n) ? `${n.slice(0, MAX_STATUS_NAME_CHARS)}...` : n));
  return list.length > MAX_STATUS_NAMES ? { names, namesOmitted: list.length - MAX_STATUS_NAMES } : { names };
}

/** Per-type state of one stream that every protocol keeps: subscription, nonces, ACK/NACK record. */
export class TypeState {
  /** A request for this type has been seen. */
  subscribed = false;
  wildcard = false;
  /** Explicitly subscribed names (interned; see subscriptions.ts). */
  sub: Subscription = NO_NAMES;
  /** Something may have to be sent: evaluate at the next flush. */
  dirty = false;
  /** Warming: next-stage names to re-send at the next evaluation even though the client has them. */
  warms: readonly string[] | undefined;
  nonce: string | undefined;
  /** The nonce's sequence number; nonces only grow per stream and type. */
  nonceSeq = 0;
  /** The response with `nonce` has not been answered yet. */
  outstanding = false;
  sentVersion: string | undefined;
  ackedVersion: string | undefined;
  /** The snapshot version this type was last evaluated against (sent, or nothing to send). */
  evaluatedVersion: string | undefined;
  lastNack: NackRecord | undefined;
  lastResponseNacked = false;
  responses = 0;
  acks = 0;
  nacks = 0;

  constructor(readonly typeUrl: XdsTypeUrl) {}

  /** A response of `version` with this nonce went out; it is in flight until answered. */
  sent(version: string, nonce: string, nonceSeq: number): void {
    this.nonce = nonce;
    this.nonceSeq = nonceSeq;
    this.outstanding = true;
    this.sentVersion = version;
    this.responses++;
  }

  /** The client accepted the response in flight. */
  acked(): void {
    this.outstanding = false;
    this.acks++;
    this.ackedVersion = this.sentVersion;
    this.lastResponseNacked = false;
  }

  /** The client rejected the response in flight: record it (a repeat of the last NACK counts up). */
  nacked(detail: { readonly code: number; readonly message: string }): NackRecord {
    this.outstanding = false;
    const version = this.sentVersion ?? '';
    const prev = this.lastNack;
    const repeated = prev !== undefined && prev.version === version && prev.message === detail.message;
    const record = Object.freeze({ version, code: detail.code, message: detail.message, at: new Date().toISOString(), count: repeated ? prev.count + 1 : 1 });
    this.lastNack = record;
    this.nacks++;
    this.lastResponseNacked = true;
    return record;
  }

  /**
   * Evaluated against `version` and whatever that sent has been ACKed or NACKed (make before
   * break waits for this; see cache/make-before-break.ts). Every protocol keeps evaluatedVersion.
   */
  answered(version: string): boolean {
    return this.evaluatedVersion === version && !this.dirty && !this.outstanding;
  }

  /** Evaluated against `currentVersion`, nothing pending or unanswered, and not NACKed. */
  upToDate(currentVersion: string | undefined): boolean {
    return currentVersion !== undefined && this.evaluatedVersion === currentVersion && !this.dirty && !this.outstanding && !this.lastResponseNacked;
  }

  status(): TypeStatus {
    return Object.freeze({
      typeUrl: this.typeUrl,
      type: TYPE_SHORT[this.typeUrl],
      wildcard: this.wildcard,
      ...statusNames(this.sub.list),
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

/** The registry's view of a stream; `group` is supplied by the session, type states by its protocol. */
export class StreamRecord<S extends TypeState = TypeState> {
  node: NodeInfo | undefined;
  readonly types = new Map<XdsTypeUrl, S>();
  readonly connectedAt = new Date().toISOString();

  constructor(
    readonly id: number,
    readonly method: StreamMethod,
    readonly protocol: StreamProtocol,
    readonly peer: string,
    private readonly groupOf: () => string,
    private readonly newState: (typeUrl: XdsTypeUrl) => S,
  ) {}

  get nodeId(): string {
    return this.node?.id ?? '';
  }

  get group(): string {
    return this.groupOf();
  }

  /** The state for a type, created on first use. */
  state(typeUrl: XdsTypeUrl): S {
    let st = this.types.get(typeUrl);
    if (!st) {
      st = this.newState(typeUrl);
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
      protocol: this.protocol,
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
