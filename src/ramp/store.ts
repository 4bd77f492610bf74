/**
 * Ramp state in Consul KV: one JSON value per ramp at `<prefix><id>` and its lock at
 * `<prefix><id>.lock`. In: a Consul client. Out: read, list and check-and-set updates, so the
 * driver and `ramp pause|resume|abort` (run anywhere) never overwrite each other.
 */
import { ConsulClient, kvPath } from '../consul/client.js';
import { ConsulError } from '../errors.js';
import { parseRampState, type RampState } from './spec.js';

export const LOCK_SUFFIX = '.lock';

export function stateKey(prefix: string, id: string): string {
  return `${prefix}${id}`;
}

export async function readRamp(client: ConsulClient, key: string): Promise<{ state: RampState; index: number } | undefined> {
  const entry = await client.kvGet(key);
  return entry ? { state: parseRampState(entry.value, key), index: entry.modifyIndex } : undefined;
}

/** The ids of every ramp stored under `prefix`. */
export async function listRamps(client: ConsulClient, prefix: string): Promise<string[]> {
  const res = await client.request('GET', kvPath(prefix), { query: { keys: 'true' } });
  if (res.status === 404) return [];
  const keys = JSON.parse(ConsulClient.expect(res, `consul kv ${prefix} (keys)`).body) as string[];
  return keys.filter((k) => !k.endsWith(LOCK_SUFFIX) && !k.slice(prefix.length).includes('/')).map((k) => k.slice(prefix.length));
}

/**
 * Applies `change` to the stored state with check-and-set, re-reading and re-applying on a
 * conflict (another writer changed the state in between). `change` returns undefined to write nothing.
 */
export async function updateRamp(client: ConsulClient, key: string, change: (s: RampState) => RampState | undefined): Promise<RampState> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const got = await readRamp(client, key);
    if (!got) throw new ConsulError(`consul kv ${key}: no such ramp`);
    const next = change(got.state);
    if (!next) return got.state;
    if (await client.kvPut(key, JSON.stringify(next, null, 2), { cas: got.index })) return next;
  }
  throw new ConsulError(`consul kv ${key}: the ramp state kept changing under 10 check-and-set attempts`);
}
