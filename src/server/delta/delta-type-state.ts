/**
 * The delta (incremental) working memory of one stream for one resource type, on top of what every
 * protocol keeps (../stream-state.ts): which names the client holds at which version, which
 * resource versions it rejected, what it newly subscribed to, and the warming re-sends owed to it.
 */
import { isFullStateType, type XdsTypeUrl } from '../../xds/resource-types.js';
import type { TypeSnapshot } from '../../cache/snapshot.js';
import { TypeState } from '../stream-state.js';

/** Stands for "the client holds this name, at a version we do not know" in `overlay`. */
export const UNKNOWN_VERSION = '';

export class DeltaTypeState extends TypeState {
  /** LDS/CDS: a first request without names is a (legacy) wildcard subscription. */
  readonly wildcardByDefault: boolean;
  /**
   * What the client holds, as a shared snapshot plus the exceptions to it: for a subscribed name,
   * `overlay`'s version if it has one (UNKNOWN_VERSION after a NACK of a response carrying it),
   * else the version in `base` (none: the client does not hold it). So a stream in step with the
   * cache keeps no per-resource state at all, however many resources it holds.
   */
  base: TypeSnapshot | undefined;
  readonly overlay = new Map<string, string>();
  /** Resource versions the client rejected: name -> version, never sent again on this stream. */
  readonly rejected = new Map<string, string>();
  /** Names subscribed since the last evaluation: the client holds only what `overlay` says of them. */
  readonly added = new Set<string>();
  /** A request must get an answer even if it carries nothing new (the first one of the type). */
  answerDue = false;
  /** Names of the resources in the latest response (what a NACK refers to). */
  lastSent: readonly string[] = [];

  constructor(typeUrl: XdsTypeUrl) {
    super(typeUrl);
    this.wildcardByDefault = isFullStateType(typeUrl);
  }

  /** The version of a subscribed name the client holds (undefined: it holds none). */
  holds(name: string): string | undefined {
    const v = this.overlay.get(name);
    if (v !== undefined || this.added.has(name)) return v;
    return this.base?.resources.get(name)?.version;
  }
}
