/**
 * Exactly one driver per ramp: a Consul session lock. In: a Consul client and a lock key. Out: a
 * held lock (the session is renewed every TTL/3; `lost` fires when Consul says the session is
 * gone) or undefined when another session holds the key.
 *
 * The session has LockDelay 0 and Behavior release: when the holder dies, Consul invalidates the
 * session after its TTL (Consul allows itself up to twice the TTL) and the key is free at once for
 * the next driver, which continues from the state the ramp recorded.
 */
import { z } from 'zod';
import { ConsulClient, kvPath } from '../consul/client.js';
import type { Logger } from '../log.js';

/** Consul's smallest session TTL. */
export const DEFAULT_LOCK_TTL_SECONDS = 10;

const sessionSchema = z.object({ ID: z.string().min(1) });

export class SessionLock {
  private readonly client: ConsulClient;
  readonly key: string;
  readonly session: string;
  private readonly timer: NodeJS.Timeout;
  private readonly lostController = new AbortController();

  private constructor(client: ConsulClient, key: string, session: string, ttlSeconds: number, logger: Logger) {
    this.client = client;
    this.key = key;
    this.session = session;
    this.timer = setInterval(
      () => {
        client.request('PUT', `/v1/session/renew/${session}`).then(
          (res) => {
            if (res.status === 404) this.markLost(logger, 'consul no longer knows the session (expired)');
          },
          (err: Error) => logger.warn({ key, err: err.message }, 'ramp lock: session renewal failed; retrying'),
        );
      },
      (ttlSeconds * 1000) / 3,
    );
    this.timer.unref();
  }

  /** Aborted when the session is gone: the holder must stop writing. */
  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  /** Tries once; undefined when the key is held by another session. */
  static async tryAcquire(client: ConsulClient, key: string, opts: { ttlSeconds?: number; holder: string; logger: Logger }): Promise<SessionLock | undefined> {
    const ttl = opts.ttlSeconds ?? DEFAULT_LOCK_TTL_SECONDS;
    const created = ConsulClient.expect(
      await client.request('PUT', '/v1/session/create', {
        body: JSON.stringify({ Name: `consul-xds ramp ${key}`, TTL: `${ttl}s`, LockDelay: '0s', Behavior: 'release' }),
      }),
      `consul session create for ${key}`,
    );
    const session = sessionSchema.parse(JSON.parse(created.body)).ID;
    const res = ConsulClient.expect(await client.request('PUT', kvPath(key), { query: { acquire: session }, body: opts.holder }), `consul kv ${key} acquire`);
    if (res.body.trim() !== 'true') {
      await client.request('PUT', `/v1/session/destroy/${session}`).catch(() => undefined);
      return undefined;
    }
    return new SessionLock(client, key, session, ttl, opts.logger);
  }

  private markLost(logger: Logger, why: string): void {
    if (this.lostController.signal.aborted) return;
    logger.error({ key: this.key }, `ramp lock lost: ${why}`);
    clearInterval(this.timer);
    this.lostController.abort(new Error(`ramp lock ${this.key} lost: ${why}`));
  }

  /** Releases the key and destroys the session. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.client.request('PUT', kvPath(this.key), { query: { release: this.session } }).catch(() => undefined);
    await this.client.request('PUT', `/v1/session/destroy/${this.session}`).catch(() => undefined);
  }
}
