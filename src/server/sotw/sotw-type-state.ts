/**
 * The State-of-the-World working memory of one stream for one resource type, on top of what every
 * protocol keeps (../stream-state.ts): what the client holds (its base snapshot, what it ACKed, the
 * names whose content on it is unknown), what is due, and the warming re-sends owed to it.
 */
import { isFullStateType, type XdsTypeUrl } from '../../xds/resource-types.js';
import type { SnapshotResource, TypeSnapshot } from '../../cache/snapshot.js';
import { TypeState } from '../stream-state.js';

export class SotwTypeState extends TypeState {
  /** LDS/CDS: every response is the full (subscribed) set. */
  readonly full: boolean;
  /** resource_names bytes of the last request: an equal next request skips all name handling. */
  namesRaw: Buffer | undefined;
  /** Names subscribed since the last evaluation: answered even if unchanged (or absent). */
  readonly added = new Set<string>();
  /** A request must get an answer even if it carries nothing new (first request, new names). */
  answerDue = false;
  /** The type snapshot whose content the client holds for its subscribed names. */
  base: TypeSnapshot | undefined;
  /** Full-state types: the type snapshot last ACKed (the client falls back to it on NACK). */
  ackedBase: TypeSnapshot | undefined;
  /** RDS/EDS names whose content on the client is unknown (rejected, or sent during a NACK). */
  stale: Set<string> | undefined;
  /** Resources in the latest response (rolled back on NACK). */
  lastSent: readonly SnapshotResource[] = [];
  /** A version the client rejected; not sent again until the type moves on. */
  nackedVersion: string | undefined;

  constructor(typeUrl: XdsTypeUrl) {
    super(typeUrl);
    this.full = isFullStateType(typeUrl);
  }
}
