/**
 * The "Consul came back empty" guard for one service. In: each health answer (its instances and
 * whether Consul's index went backwards) and the time. Out: the instances to serve, and while a
 * hold is on, which instances are held, why and until when.
 *
 * Why: a restarted Consul (a dev agent, a server whose catalog is rebuilt) can answer "no
 * instances" for a few seconds. Published as is, Envoy drops every host of the cluster and
 * answers 503 "no healthy upstream". So a loss that looks like Consul's rather than the
 * service's is believed only after a grace period:
 * - `empty`: the service had instances and the answer has none. The last instances keep being
 *   served; any instance returning ends the hold at once (a redeploy that replaced every instance
 *   must not keep sending traffic to the old ones); after the grace the empty set is published,
 *   so a deliberate scale to zero still arrives, `graceMs` late.
 * - `index-backwards`: Consul's index fell below the highest one seen (a restart, a snapshot
 *   restore, or a lagging server on a stale read) and instances served before are missing. That
 *   Consul is rebuilding its state (agents re-register one by one, anti-entropy catches up), so
 *   its partial answers are not trusted to remove anything: the answer is served plus the missing
 *   instances (with their last known health), until every held instance is listed again or the
 *   grace ends; then the answer is served as it is. New instances and health changes of listed
 *   ones go through at once, the hold only delays removals.
 * Instances are identified by node and service ID. A service's first answer is served as it is
 * (no data before is not "had instances"). `graceMs` 0 turns the guard off.
 */
import { compare } from '../config/views.js';
import type { HealthInstance } from './health-entries.js';

export type HoldReason = 'empty' | 'index-backwards';

export interface HoldStatus {
  readonly reason: HoldReason;
  /** ISO times: when the hold began and when it ends at the latest. */
  readonly since: string;
  readonly until: string;
  /** `node/serviceId` of the instances served although Consul's answer lacks them. */
  readonly held: readonly string[];
}

interface Hold {
  readonly reason: HoldReason;
  readonly since: number;
  readonly until: number;
  readonly held: readonly HealthInstance[];
}

const idOf = (i: HealthInstance): string => `${i.node}/${i.serviceId}`;

export class InstanceHold {
  private readonly graceMs: number;
  private latest?: readonly HealthInstance[];
  private served?: readonly HealthInstance[];
  private hold?: Hold;

  constructor(graceMs: number) {
    this.graceMs = graceMs;
  }

  /** A new answer at `now` (epoch ms). Returns the instances to serve. */
  answer(instances: readonly HealthInstance[], indexWentBackwards: boolean, now: number): readonly HealthInstance[] {
    this.latest = instances;
    if (this.hold) {
      if (now >= this.hold.until || this.recovered(this.hold, instances)) this.hold = undefined;
    } else if (this.graceMs > 0 && this.served) {
      const lost = indexWentBackwards ? missing(this.served, instances) : instances.length === 0 ? this.served : [];
      if (lost.length > 0) this.hold = { reason: indexWentBackwards ? 'index-backwards' : 'empty', since: now, until: now + this.graceMs, held: lost };
    }
    this.served = this.hold ? withHeld(instances, this.hold) : instances;
    return this.served;
  }

  /** Ends a hold whose grace is over. Returns the instances to serve when that changed them. */
  expire(now: number): readonly HealthInstance[] | undefined {
    if (!this.hold || now < this.hold.until) return undefined;
    this.hold = undefined;
    this.served = this.latest ?? [];
    return this.served;
  }

  /** When the current hold ends at the latest (epoch ms); undefined when nothing is held. */
  get deadline(): number | undefined {
    return this.hold?.until;
  }

  status(): HoldStatus | undefined {
    const h = this.hold;
    if (!h) return undefined;
    const listed = new Set((this.latest ?? []).map(idOf));
    return Object.freeze({
      reason: h.reason,
      since: new Date(h.since).toISOString(),
      until: new Date(h.until).toISOString(),
      held: Object.freeze(h.held.filter((i) => !listed.has(idOf(i))).map(idOf)),
    });
  }

  private recovered(hold: Hold, instances: readonly HealthInstance[]): boolean {
    return hold.reason === 'empty' ? instances.length > 0 : missing(hold.held, instances).length === 0;
  }
}

/** The instances of `before` that `now` does not list. */
function missing(before: readonly HealthInstance[], now: readonly HealthInstance[]): readonly HealthInstance[] {
  const listed = new Set(now.map(idOf));
  return before.filter((i) => !listed.has(idOf(i)));
}

/** The answer plus the held instances it lacks, in the answer's order (node, then service id). */
function withHeld(instances: readonly HealthInstance[], hold: Hold): readonly HealthInstance[] {
  const extra = missing(hold.held, instances);
  if (extra.length === 0) return instances;
  return Object.freeze([...instances, ...extra].sort((a, b) => compare(a.node, b.node) || compare(a.serviceId, b.serviceId)));
}
