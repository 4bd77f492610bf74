/**
 * A route's hash_policy applied to one request (Envoy's hash_policy_impl). In: the route's
 * HashPolicyModels and the Downstream. Out: the request's 32-bit hash key for RING_HASH / MAGLEV,
 * or undefined when no policy found its input (the pick is then random, as in Envoy).
 */
import type { HashPolicyModel } from '../config/route-resource.js';
import type { Downstream } from '../http/downstream.js';
import { combineHash, hash32 } from '../common/hash.js';
import { stripPort } from './route-table.js';

export function requestHash(policies: readonly HashPolicyModel[], down: Downstream): number | undefined {
  let hash: number | undefined;
  for (const p of policies) {
    const v = hashInput(p, down);
    if (v === undefined) continue;
    const h = hash32(v);
    hash = hash === undefined ? h : combineHash(hash, h);
    if (p.terminal) break;
  }
  return hash;
}

function hashInput(p: HashPolicyModel, down: Downstream): string | undefined {
  switch (p.kind) {
    case 'header':
      return down.header(p.name);
    case 'source_ip':
      return stripPort(down.remoteAddress).replace(/^\[|\]$/g, '');
    case 'query': {
      const q = down.path.indexOf('?');
      return q < 0 ? undefined : (new URLSearchParams(down.path.slice(q + 1)).get(p.name) ?? undefined);
    }
    case 'cookie': {
      const c = down.header('cookie');
      if (!c) return undefined;
      for (const part of c.split(';')) {
        const eq = part.indexOf('=');
        if (eq > 0 && part.slice(0, eq).trim() === p.name) return part.slice(eq + 1).trim();
      }
      return undefined;
    }
  }
}
