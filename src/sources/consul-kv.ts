/**
 * Consul KV source. In: one KV key (one node group's YAML config). Out: `onValue(text,
 * modifyIndex)` each time the stored text changes, `onError(err)` naming the key when Consul
 * cannot be read or the key is missing. Parsing is serve's job (parseConfig(text, `consul kv
 * <key>`) in its parser thread, src/config/parse-worker.ts), and the publisher keeps the last
 * good config when a new text is refused.
 *
 * An index bump with the same text (a re-PUT of the same value, an unrelated write) emits
 * nothing. A deleted key is reported and the last value keeps serving; re-creating it with the
 * same text emits nothing either. Multiple fleets run one source per (group, key) binding
 * (see kvBindings in src/consul/options.ts).
 */
import { BlockingWatch, type WatchStatus } from '../consul/blocking-watch.js';
import { decodeKvEntry, kvPath, type ConsulClient, type KvEntry } from '../consul/client.js';
import { DEFAULT_GROUP, checkKey, consistencyQuery, type ConsulConsistency, type ConsulWatchTiming } from '../consul/options.js';
import { ConsulError } from '../errors.js';
import type { Logger } from '../log.js';

export interface ConsulKvSourceOptions {
  readonly client: ConsulClient;
  readonly key: string;
  /** The node group this key configures (default `default`); reported in status. */
  readonly group?: string;
  onValue(text: string, modifyIndex: number): void;
  onError(error: ConsulError): void;
  readonly timing?: ConsulWatchTiming;
  /** Read mode of the watch (default `stale`). */
  readonly consistency?: ConsulConsistency;
  readonly logger?: Logger;
  readonly random?: () => number;
}

export interface KvSourceStatus extends WatchStatus {
  readonly key: string;
  readonly group: string;
  /** Consul answered that the key does not exist (the last value, if any, keeps serving). */
  readonly missing: boolean;
  /** ModifyIndex the current text was read at (a re-created key with the same text updates it, emitting nothing). */
  readonly modifyIndex?: number;
}

export class ConsulKvSource {
  readonly key: string;
  readonly group: string;
  /** `consul kv <key>`: the source name for parseConfig and every error. */
  readonly origin: string;
  private readonly opts: ConsulKvSourceOptions;
  private readonly watch: BlockingWatch<KvEntry | null>;
  private last?: KvEntry;
  private missing = false;
  private waiters: Array<() => void> = [];

  constructor(opts: ConsulKvSourceOptions) {
    this.opts = opts;
    this.key = checkKey(opts.key);
    this.group = opts.group ?? DEFAULT_GROUP;
    this.origin = `consul kv ${this.key}`;
    this.watch = new BlockingWatch<KvEntry | null>({
      client: opts.client,
      name: this.origin,
      path: kvPath(this.key),
      query: consistencyQuery(opts.consistency),
      // 404 is an answer ("no such key") with an X-Consul-Index to block on, not a failure.
      acceptStatus: [200, 404],
      decode: (res) => (res.status === 404 ? null : decodeKvEntry(res, this.key)),
      // Content only: the ModifyIndex moves on every write, even of the same text.
      fingerprint: (entry) => (entry === null ? '\u0000missing' : `=${entry.value}`),
      onChange: (entry) => this.changed(entry),
      onError: (err) => opts.onError(err),
      timing: opts.timing,
      logger: opts.logger,
      random: opts.random,
    });
  }

  start(): this {
    this.watch.start();
    return this;
  }

  /** The current text (the last one emitted) and the ModifyIndex it was read at. */
  current(): { readonly text: string; readonly modifyIndex: number } | undefined {
    return this.last && { text: this.last.value, modifyIndex: this.last.modifyIndex };
  }

  /**
   * Resolves with the first value read (at once if there is one). With `timeoutMs`, rejects with a
   * ConsulError naming the key and the last problem when nothing arrives in time.
   */
  ready(timeoutMs?: number): Promise<{ readonly text: string; readonly modifyIndex: number }> {
    const now = this.current();
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        const value = this.current();
        if (value) resolve(value);
      };
      this.waiters.push(done);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== done);
          const why = this.missing ? 'the key does not exist' : (this.watch.status().lastError?.message ?? 'no answer from consul');
          reject(new ConsulError(`${this.origin}: no config within ${timeoutMs} ms (${why})`));
        }, timeoutMs);
        timer.unref();
      }
    });
  }

  status(): KvSourceStatus {
    return Object.freeze({ ...this.watch.status(), key: this.key, group: this.group, missing: this.missing, modifyIndex: this.last?.modifyIndex });
  }

  async close(): Promise<void> {
    await this.watch.stop();
  }

  private changed(entry: KvEntry | null): void {
    if (entry === null) {
      this.missing = true;
      this.opts.onError(
        new ConsulError(
          `${this.origin}: key not found${this.last ? '; the last config keeps serving' : ''} (write it with 'consul-xds kv put --consul-key ${this.key} --file FILE')`,
        ),
      );
      return;
    }
    this.missing = false;
    if (this.last && this.last.value === entry.value) {
      this.last = entry;
      return;
    }
    this.last = entry;
    const waiters = this.waiters;
    this.waiters = [];
    this.opts.onValue(entry.value, entry.modifyIndex);
    for (const w of waiters) w();
  }
}
