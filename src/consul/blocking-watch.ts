/**
 * One Consul blocking-query loop. In: an endpoint path, a decoder, timing. Out: `onChange(value,
 * index)` each time the decoded content changes, `onError(err)` on failures, and an observable
 * status (last success, last error, consecutive failures) for the status endpoint and metrics.
 *
 * Follows Consul's blocking-query rules (api-docs/features/blocking, "Implementation details"):
 * - the first request is a plain read; later ones send `index` (the last X-Consul-Index) and `wait`;
 * - an index that goes backwards (snapshot restore, a rebuilt cluster) resets to 0: the next
 *   request is a plain read again, so no change is waited past;
 * - an index below 1 is treated as 1: blocking on 0 returns at once and would spin;
 * - a return is no proof of change (timeouts, idempotent writes, unrelated index bumps), so the
 *   decoded content is compared and an unchanged value emits nothing;
 * - the loop is rate-limited on success too (`minIntervalMs` between request starts) and backs
 *   off with jitter on error (capped), so it never spins against Consul;
 * - the client timeout leaves room for the wait plus Consul's added jitter (up to wait/16);
 * - after a failed request the next one is a plain read: Consul may have come back with a lower
 *   index (a restarted dev agent, a restored snapshot), and blocking on our old, higher index
 *   would sit out a whole `wait` before the backwards rule could fire;
 * - the highest index seen survives failures, so an answer below it is reported to `onChange` as
 *   `indexWentBackwards` even when it comes after an outage (a restarted Consul): the consumer
 *   decides how far to trust such an answer (the health source holds what it lost);
 * - 429 (Consul's rate limit) and Retry-After are honoured: the next attempt waits at least as
 *   long as Consul asked (see retryDelay in backoff.ts).
 * `stop()` aborts the in-flight request and any pending delay.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConsulError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { retryDelay } from '../common/backoff.js';
import { ConsulClient, ConsulThrottledError, type ConsulResponse } from './client.js';
import { resolveTiming, type ConsulWatchTiming } from './options.js';

export interface WatchError {
  readonly code: string;
  readonly message: string;
  readonly at: string;
}

export interface WatchStatus {
  /** What is watched, as in error messages: `consul kv <key>`, `consul health <service>`. */
  readonly name: string;
  /** The index the next request blocks on (0 = the next request is a plain read). */
  readonly index: number;
  /** At least one answer has been decoded. */
  readonly answered: boolean;
  readonly lastSuccessAt?: string;
  readonly lastChangeAt?: string;
  readonly lastError?: WatchError;
  readonly consecutiveFailures: number;
  /** While failing: the delay before the next attempt. */
  readonly retryInMs?: number;
}

export interface BlockingWatchOptions<T> {
  readonly client: ConsulClient;
  /** Names the watch in errors, logs and status. */
  readonly name: string;
  /** API path, e.g. `/v1/health/service/web`. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  /** HTTP statuses that are answers (default 200). Others are errors. 404 on a KV key is an answer: "missing". */
  readonly acceptStatus?: readonly number[];
  /** Turns an answer into a value. Throwing marks the attempt failed (with backoff). */
  decode(res: ConsulResponse): T;
  /** Content identity for change detection. Default: JSON.stringify of the value. */
  fingerprint?(value: T): string;
  onChange(value: T, index: number, info: ChangeInfo): void;
  onError?(err: ConsulError): void;
  readonly timing?: ConsulWatchTiming;
  readonly logger?: Logger;
  /** Jitter source (tests make it deterministic). */
  readonly random?: () => number;
}

export interface ChangeInfo {
  /** The answer's index is below the highest one seen before (a restarted or restored Consul, a lagging server on a stale read). */
  readonly indexWentBackwards: boolean;
}

/** The blocking-query index rules in one place. */
export function nextIndex(previous: number, returned: number): number {
  if (returned < previous) return 0;
  if (returned < 1) return 1;
  return returned;
}

export class BlockingWatch<T> {
  private readonly opts: BlockingWatchOptions<T>;
  private readonly timing: ReturnType<typeof resolveTiming>;
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  private index = 0;
  /** The highest X-Consul-Index answered so far; unlike `index`, a failure does not reset it. */
  private highestIndex = 0;
  private fingerprint?: string;
  private answered = false;
  private failures = 0;
  private lastSuccessAt?: string;
  private lastChangeAt?: string;
  private lastError?: WatchError;
  private retryInMs?: number;
  private running?: Promise<void>;

  constructor(opts: BlockingWatchOptions<T>) {
    this.opts = opts;
    this.timing = resolveTiming(opts.timing);
    this.logger = (opts.logger ?? silentLogger).child({ watch: opts.name });
  }

  start(): this {
    this.running ??= this.loop();
    return this;
  }

  /** Cancels the in-flight request and the loop; resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  status(): WatchStatus {
    return Object.freeze({
      name: this.opts.name,
      index: this.index,
      answered: this.answered,
      lastSuccessAt: this.lastSuccessAt,
      lastChangeAt: this.lastChangeAt,
      lastError: this.lastError,
      consecutiveFailures: this.failures,
      retryInMs: this.retryInMs,
    });
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      const started = performance.now();
      let delay: number;
      try {
        this.handle(await this.fetch(signal));
        if (this.failures > 0) this.logger.info({ failures: this.failures }, `${this.opts.name}: consul answers again`);
        this.failures = 0;
        this.retryInMs = undefined;
        delay = this.timing.minIntervalMs - (performance.now() - started);
      } catch (err) {
        if (signal.aborted) break;
        delay = this.fail(err);
      }
      if (delay > 0) await sleep(delay, undefined, { signal }).catch(() => undefined);
    }
  }

  private fetch(signal: AbortSignal): Promise<ConsulResponse> {
    const { waitMs } = this.timing;
    const blocking = this.index > 0;
    const query = blocking ? { ...this.opts.query, index: String(this.index), wait: `${waitMs}ms` } : this.opts.query;
    // Consul adds up to wait/16 to spread wake-ups; allow that plus a margin for the answer itself.
    const timeoutMs = blocking ? waitMs + Math.ceil(waitMs / 16) + 5_000 : 10_000;
    return this.opts.client.request('GET', this.opts.path, { query, signal, timeoutMs });
  }

  private handle(res: ConsulResponse): void {
    ConsulClient.expect(res, this.opts.name, this.opts.acceptStatus ?? [200]);
    if (res.index === undefined) throw new ConsulError(`${this.opts.name}: answer has no X-Consul-Index (not a blocking endpoint?)`);
    this.index = nextIndex(this.index, res.index);
    const value = this.opts.decode(res);
    const indexWentBackwards = res.index < this.highestIndex;
    // After a backwards jump the new, lower sequence is the one to compare with. Only decoded
    // answers count: a refused one is retried as a plain read and must still look backwards.
    this.highestIndex = indexWentBackwards ? res.index : Math.max(this.highestIndex, res.index);
    this.answered = true;
    this.lastSuccessAt = new Date().toISOString();
    const fp = this.opts.fingerprint ? this.opts.fingerprint(value) : JSON.stringify(value);
    if (fp === this.fingerprint) return;
    this.fingerprint = fp;
    this.lastChangeAt = this.lastSuccessAt;
    try {
      this.opts.onChange(value, res.index, { indexWentBackwards });
    } catch (err) {
      // A consumer bug must not stall the watch or be mistaken for a Consul failure.
      this.logger.error({ err: (err as Error).message }, `${this.opts.name}: change handler failed`);
    }
  }

  private fail(err: unknown): number {
    const e = err instanceof ConsulError ? err : new ConsulError(`${this.opts.name}: ${(err as Error).message}`, { cause: err });
    this.failures++;
    this.index = 0;
    this.lastError = Object.freeze({ code: e.code, message: e.message, at: new Date().toISOString() });
    const retryAfterMs = e instanceof ConsulThrottledError ? e.retryAfterMs : undefined;
    const delay = retryDelay(this.failures, { baseMs: this.timing.backoffBaseMs, maxMs: this.timing.backoffMaxMs }, retryAfterMs, this.opts.random);
    this.retryInMs = delay;
    // Log the first failure of a streak loudly, then sparsely: an outage must not flood the log.
    if (this.failures === 1 || this.failures % 20 === 0) {
      this.logger.warn({ failures: this.failures, retryInMs: delay, err: e.message }, `${this.opts.name}: consul request failed; keeping last data`);
    } else {
      this.logger.debug({ failures: this.failures, retryInMs: delay, err: e.message }, `${this.opts.name}: consul request failed`);
    }
    try {
      this.opts.onError?.(e);
    } catch (handlerErr) {
      this.logger.error({ err: (handlerErr as Error).message }, `${this.opts.name}: error handler failed`);
    }
    return delay;
  }
}
