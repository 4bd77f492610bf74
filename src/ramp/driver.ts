/**
 * The ramp driver: takes a ramp's lock and drives it from its recorded state until it is done,
 * rolled back, paused or aborted. In: a Consul client, the ramp's state key. Out: check-and-set
 * weight edits of the config key (the `weights set` code: comments kept, diff logged), state
 * updates, one log line per decision with its figures, metrics.
 *
 * Each tick (default 1 s) reads the fleet's counts over the step's window (since the step's
 * weight was written, at most --every) and asks the gate (gate.ts). A breach rolls the canary
 * back to weight 0 at once; a pass after the window takes the next step. A step is recorded as
 * pending before its write and committed after, so a driver that dies in between leaves enough
 * for the next one to finish it without taking it twice. An edit of the config by anyone else
 * (ModifyIndex and content differ from the ramp's last write, or the check-and-set fails) pauses
 * the ramp: nothing is overwritten.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsulClient } from '../consul/client.js';
import { applyKvWrite, planWeightEdit } from '../commands/kv-write.js';
import { unifiedDiff } from '../commands/text-diff.js';
import { CasConflictError } from '../errors.js';
import type { Logger } from '../log.js';
import { figuresOf, readFleet } from './fleet.js';
import { decide, type Decision } from './gate.js';
import { SessionLock } from './lock.js';
import type { RampMetrics } from './metrics.js';
import { rampWeights, sha256, stepChanges, type Figures, type HistoryEntry, type RampState } from './spec.js';
import { LOCK_SUFFIX, listRamps, readRamp, stateKey, updateRamp } from './store.js';

export interface DriverOptions {
  readonly client: ConsulClient;
  readonly logger: Logger;
  readonly metrics?: RampMetrics;
  /** How often the gate is evaluated (default 1000 ms). */
  readonly tickMs?: number;
  /** How long a sidecar has to answer (default 1000 ms). */
  readonly fleetTimeoutMs?: number;
  /** Session TTL of the lock in seconds (default 10, Consul's minimum). */
  readonly lockTtlSeconds?: number;
}

const TERMINAL: ReadonlySet<RampState['status']> = new Set(['rolled-back', 'done', 'aborted']);

export function isTerminal(status: RampState['status']): boolean {
  return TERMINAL.has(status);
}

const now = (): string => new Date().toISOString();

/**
 * Drives the ramp at `key` while it is running. With `waitForLock`, polls for the lock while
 * another driver holds it; without, returns undefined at once when it is held.
 */
export async function driveRamp(key: string, opts: DriverOptions, signal: AbortSignal, waitForLock = false): Promise<RampState | undefined> {
  const logger = opts.logger.child({ ramp: key });
  for (;;) {
    if (signal.aborted) return undefined;
    const got = await readRamp(opts.client, key);
    if (got?.state.status !== 'running') return got?.state;
    const lock = await SessionLock.tryAcquire(opts.client, `${key}${LOCK_SUFFIX}`, {
      holder: `${hostname()} pid ${process.pid}`,
      logger,
      ...(opts.lockTtlSeconds !== undefined ? { ttlSeconds: opts.lockTtlSeconds } : {}),
    });
    if (lock) {
      logger.info({ session: lock.session }, 'ramp lock taken; driving from the recorded step');
      try {
        return await new RampRun(key, opts, logger, lock.lost).run(signal);
      } finally {
        await lock.release();
      }
    }
    if (!waitForLock) return undefined;
    await sleep(1000, undefined, { signal }).catch(() => undefined);
  }
}

/** `serve --ramp-driver`: picks up every running ramp under `prefix` whose lock is free. */
export class RampPicker {
  private readonly active = new Set<string>();
  private readonly controller = new AbortController();
  private readonly loop: Promise<void>;

  constructor(prefix: string, opts: DriverOptions & { pollMs?: number }) {
    const signal = this.controller.signal;
    this.loop = (async () => {
      while (!signal.aborted) {
        try {
          for (const id of await listRamps(opts.client, prefix)) {
            const key = stateKey(prefix, id);
            if (this.active.has(key)) continue;
            this.active.add(key);
            driveRamp(key, opts, signal)
              .catch((err: Error) => opts.logger.error({ ramp: key, err: err.message }, 'ramp driver failed'))
              .finally(() => this.active.delete(key));
          }
        } catch (err) {
          opts.logger.warn({ prefix, err: (err as Error).message }, 'ramp driver: cannot list ramps; retrying');
        }
        await sleep(opts.pollMs ?? 2000, undefined, { signal }).catch(() => undefined);
      }
    })();
  }

  async close(): Promise<void> {
    this.controller.abort();
    await this.loop;
  }
}

class RampRun {
  private lastWait = '';

  constructor(
    private readonly key: string,
    private readonly opts: DriverOptions,
    private readonly logger: Logger,
    private readonly lost: AbortSignal,
  ) {}

  async run(signal: AbortSignal): Promise<RampState | undefined> {
    const stop = AbortSignal.any([signal, this.lost]);
    while (!stop.aborted) {
      try {
        const got = await readRamp(this.opts.client, this.key);
        if (!got) return undefined;
        const s = got.state;
        this.opts.metrics?.position(s.id, s.step, s.weight);
        if (s.status !== 'running') return s;
        if (s.pending) await this.reconcile(s);
        else if (s.step === 0) await this.takeStep(s);
        else if (await this.evaluate(s)) continue;
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'ramp tick failed; retrying');
      }
      await sleep(this.opts.tickMs ?? 1000, undefined, { signal: stop }).catch(() => undefined);
    }
    return undefined;
  }

  /** One gate decision; true when it changed the ramp (evaluate again at once). */
  private async evaluate(s: RampState): Promise<boolean> {
    const { spec } = s;
    const elapsedMs = Date.now() - s.stepStartedAt;
    const seconds = Math.max(1, Math.min(Math.ceil(spec.everyMs / 1000), Math.ceil(elapsedMs / 1000)));
    const view = await readFleet(this.opts.client, spec.sidecarService, seconds, this.opts.fleetTimeoutMs);
    const canary = figuresOf(view, spec.canary);
    const baseline = figuresOf(view, spec.baseline);
    const d = decide({ spec, canary, baseline, elapsedMs, answered: view.answered, registered: view.sidecars.length });
    this.opts.metrics?.decision(s.id, d.kind);
    const figures = { step: s.step, weight: s.weight, windowSeconds: seconds, canary, baseline, sidecars: `${view.answered}/${view.sidecars.length}` };
    if (d.kind === 'wait') {
      // Every tick decides; a wait is logged at info when its reason changes, else at debug.
      const level = d.reason === this.lastWait ? 'debug' : 'info';
      this.lastWait = d.reason;
      this.logger[level]({ ...figures, decision: 'wait' }, `ramp wait: ${d.reason}`);
      return false;
    }
    this.lastWait = '';
    if (d.kind === 'breach') {
      this.logger.warn({ ...figures, decision: 'breach' }, `ramp breach: ${d.reason}; rolling ${spec.canary} back to weight 0`);
      await rollBack(this.opts.client, this.key, s, this.logger, { event: 'breach', reason: d.reason, windowSeconds: seconds, canary, baseline });
      this.opts.metrics?.rollback(s.id);
      return true;
    }
    this.logger.info({ ...figures, decision: 'pass' }, `ramp pass: ${d.reason}`);
    if (s.weight >= spec.to) {
      await updateRamp(this.opts.client, this.key, (st) =>
        st.status === 'running' ? finish(st, 'done', passEntry(st, d, seconds, canary, baseline)) : undefined,
      );
      this.logger.info({ step: s.step, weight: s.weight }, `ramp done: ${spec.canary} at weight ${s.weight} on ${spec.prefix}`);
    } else {
      await this.takeStep(s);
    }
    return true;
  }

  /** Writes the next step's weights (check-and-set), recorded pending first, committed after. */
  private async takeStep(s: RampState): Promise<void> {
    const { spec } = s;
    const step = s.step + 1;
    const weight = rampWeights(spec)[step - 1] ?? spec.to;
    const { plan } = await planWeightEdit(
      this.opts.client,
      spec.configKey,
      spec.prefix,
      stepChanges(spec, weight),
      spec.vhost !== undefined ? { vhost: spec.vhost } : {},
    );
    const current = plan.current!; // planWeightEdit throws when the key is missing
    if (current.modifyIndex !== s.lastWrite.index && sha256(current.value) !== s.lastWrite.sha256) {
      await this.pause(handEdit(spec.configKey, s.lastWrite.index, current.modifyIndex));
      return;
    }
    const sha = sha256(plan.next.text);
    const marked = await updateRamp(this.opts.client, this.key, (st) =>
      st.status === 'running' && st.step === s.step && !st.pending ? { ...st, pending: { step, weight, sha256: sha, fromIndex: plan.cas } } : undefined,
    );
    if (marked.pending?.sha256 !== sha) return; // the state moved on (paused, aborted): read it again
    try {
      await applyKvWrite(this.opts.client, plan);
    } catch (err) {
      if (!(err instanceof CasConflictError)) throw err;
      await this.pause(`${handEdit(spec.configKey, plan.cas, undefined)} (the check-and-set write of step ${step} was refused)`);
      return;
    }
    const written = await this.opts.client.kvGet(spec.configKey);
    await this.commit(step, weight, written?.modifyIndex ?? plan.cas);
    this.logger.info(
      {
        step,
        weight,
        baselineWeight: 100 - weight,
        casIndex: plan.cas,
        diff: unifiedDiff(current.value, plan.next.text, { from: 'before', to: `step ${step}` }),
      },
      `ramp step ${step}: ${spec.canary}=${weight} ${spec.baseline}=${100 - weight} on ${spec.prefix}`,
    );
  }

  private async commit(step: number, weight: number, index: number): Promise<void> {
    const s = await updateRamp(this.opts.client, this.key, (st) =>
      st.pending?.step === step
        ? {
            ...st,
            step,
            weight,
            stepStartedAt: Date.now(),
            lastWrite: { index, sha256: st.pending.sha256 },
            pending: undefined,
            history: [...st.history, { at: now(), event: 'step', step, weight }],
          }
        : undefined,
    );
    this.opts.metrics?.position(s.id, s.step, s.weight);
  }

  /** A pending step a dead driver left: written (commit it), not written (drop it), or overwritten (pause). */
  private async reconcile(s: RampState): Promise<void> {
    const p = s.pending!;
    const cur = await this.opts.client.kvGet(s.spec.configKey);
    if (cur && sha256(cur.value) === p.sha256) {
      this.logger.info({ step: p.step, weight: p.weight }, 'ramp: the previous driver wrote this step but did not record it; recording it');
      await this.commit(p.step, p.weight, cur.modifyIndex);
      return;
    }
    await updateRamp(this.opts.client, this.key, (st) => (st.pending?.step === p.step ? { ...st, pending: undefined } : undefined));
    if (cur && cur.modifyIndex !== p.fromIndex) await this.pause(handEdit(s.spec.configKey, p.fromIndex, cur.modifyIndex));
  }

  private async pause(reason: string): Promise<void> {
    const s = await updateRamp(this.opts.client, this.key, (st) =>
      st.status === 'running'
        ? { ...st, status: 'paused', reason, history: [...st.history, { at: now(), event: 'paused', step: st.step, weight: st.weight, reason }] }
        : undefined,
    );
    this.logger.warn({ step: s.step, weight: s.weight }, `ramp paused: ${reason}`);
  }
}

function handEdit(key: string, ours: number, theirs: number | undefined): string {
  return `consul kv ${key} was edited by someone else since the ramp's last write (ModifyIndex ${ours}${theirs !== undefined ? `, now ${theirs}` : ''}); nothing was overwritten. Check the edit, then run 'consul-xds ramp resume' (the edited config becomes the base) or 'ramp abort'`;
}

function passEntry(s: RampState, d: Decision, windowSeconds: number, canary: Figures, baseline: Figures): HistoryEntry {
  return { at: now(), event: 'done', step: s.step, weight: s.weight, reason: d.reason, windowSeconds, canary, baseline };
}

function finish(s: RampState, status: 'done' | 'rolled-back' | 'aborted', entry: HistoryEntry, weight = s.weight): RampState {
  return { ...s, status, weight, pending: undefined, ...(entry.reason !== undefined ? { reason: entry.reason } : {}), history: [...s.history, entry] };
}

/**
 * Sets the canary's weight to 0 (the baseline's weight is left as it is: weights are relative, so
 * it carries all the traffic) and records `status`. Retried on a check-and-set conflict: taking a
 * bad canary out wins over a concurrent edit, and the splice keeps that edit's other changes.
 */
export async function rollBack(
  client: ConsulClient,
  key: string,
  s: RampState,
  logger: Logger,
  why: Omit<HistoryEntry, 'at' | 'step' | 'weight'>,
  status: 'rolled-back' | 'aborted' = 'rolled-back',
): Promise<RampState> {
  const { spec } = s;
  let index = 0;
  let sha = '';
  for (let attempt = 1; ; attempt++) {
    const { plan } = await planWeightEdit(
      client,
      spec.configKey,
      spec.prefix,
      [{ cluster: spec.canary, weight: 0 }],
      spec.vhost !== undefined ? { vhost: spec.vhost } : {},
    );
    try {
      await applyKvWrite(client, plan);
      index = (await client.kvGet(spec.configKey))?.modifyIndex ?? plan.cas;
      sha = sha256(plan.next.text);
      break;
    } catch (err) {
      if (!(err instanceof CasConflictError) || attempt >= 5) throw err;
    }
  }
  const next = await updateRamp(client, key, (st) =>
    isTerminal(st.status) ? undefined : { ...finish(st, status, { at: now(), step: st.step, weight: 0, ...why }, 0), lastWrite: { index, sha256: sha } },
  );
  logger.warn({ step: s.step, reason: why.reason }, `ramp ${status}: ${spec.canary} weight 0 on ${spec.prefix} (config ModifyIndex ${index})`);
  return next;
}
