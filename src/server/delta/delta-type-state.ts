/**
 * The delta (incremental) working memory of one stream for one resource type, on top of what every
 * protocol keeps (../stream-state.ts): which names the client holds at which version, which
 * resource versions it rejected, what it newly subscribed to, and the warming re-sends owed to it.
 */
import { isFullStateType, type XdsTypeUrl } from '../../xds/resource-types.js';
import type { TypeSnapshot } from '../../cache/snapshot.js';
import { TypeState } from '../stream-state.js';

/** Stands for "the client holds this name, at a version we do not know" in `held`. */
export const UNKNOWN_VERSION = '';

export class DeltaTypeState extends TypeState {
  /** LDS/CDS: a first request without names is a (legacy) wildcard subscription. */
  readonly wildcardByDefault: boolean;
  /** What the client holds: name -> version (UNKNOWN_VERSION after a NACK of a response carrying it). */
  readonly held = new Map<string, string>();
  /** Resource versions the client rejected: name -> version, never sent again on this stream. */
  readonly rejected = new Map<string, string>();
  /** Names subscribed since the last evaluation: each gets an answer (the resource, or a removal). */
  readonly added = new Set<string>();
  /** Warming: next-stage names to re-send even though the client holds them. */
  warms: readonly string[] | undefined;
  /** A request must get an answer even if it carries nothing new (the first one of the type). */
  answerDue = false;
  /**
   * The type snapshot `held` equals over every subscribed name, or undefined when that is not
   * known (before the first evaluation, after a NACK or a subscription change): with it, what to
   * send is a memoised diff shared by every stream in the same situation.
   */
  base: TypeSnapshot | undefined;
  /** Names of the resources in the latest response (what a NACK refers to). */
  lastSent: readonly string[] = [];

  constructor(typeUrl: XdsTypeUrl) {
    super(typeUrl);
    this.wildcardByDefault = isFullStateType(typeUrl);
  }
}
