/**
 * DnsResolver (STRICT_DNS / LOGICAL_DNS endpoints) with a scripted lookup: every address of every
 * name becomes a host (STRICT_DNS), only the first (LOGICAL_DNS); re-resolution at the refresh
 * rate or, with respect_dns_ttl, after the TTL; a failed lookup keeps the last addresses; the
 * system lookup resolves `localhost` with V4_ONLY to 127.0.0.1.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DnsModel } from '../../../../src/proxy/config/cluster-resource.js';
import type { EndpointsModel } from '../../../../src/proxy/config/endpoint-resource.js';
import { DnsResolver, systemLookup, type DnsLookup, type ResolvedAddress } from '../../../../src/proxy/upstream/dns-resolver.js';
import { waitUntil } from '../../../support/tmp.js';

function model(names: Array<[string, number]>, over: Partial<DnsModel> = {}): DnsModel {
  return {
    strict: true,
    targets: {
      clusterName: 'c',
      overprovisioningFactor: 140,
      localities: [
        {
          locality: { region: '', zone: '', subZone: '' },
          weight: 0,
          priority: 0,
          endpoints: names.map(([address, port]) => ({ address, port, weight: 1, health: 'UNKNOWN', hostname: '' })),
        },
      ],
    },
    refreshMs: 20,
    respectTtl: false,
    family: 'V4_ONLY',
    ...over,
  };
}

/** A lookup answering from a table the test edits; counts calls per name. */
function scripted(table: Map<string, readonly ResolvedAddress[] | Error>): { lookup: DnsLookup; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const lookup: DnsLookup = async (name) => {
    calls.set(name, (calls.get(name) ?? 0) + 1);
    const v = table.get(name);
    if (v === undefined || v instanceof Error) throw v ?? new Error(`ENOTFOUND ${name}`);
    return v;
  };
  return { lookup, calls };
}

const keys = (e: EndpointsModel | undefined): string[] => (e?.localities ?? []).flatMap((l) => l.endpoints.map((ep) => `${ep.address}:${ep.port}`));

describe('DnsResolver', () => {
  it('STRICT_DNS: every address of every name, once all names were tried; changes handed over again', async () => {
    const table = new Map<string, readonly ResolvedAddress[] | Error>([
      ['backend', [{ address: '10.0.0.1' }, { address: '10.0.0.2' }]],
      ['other', [{ address: '10.0.0.9' }]],
    ]);
    const { lookup } = scripted(table);
    const seen: EndpointsModel[] = [];
    const r = new DnsResolver(
      model([
        ['backend', 50051],
        ['other', 80],
        ['10.1.1.1', 81],
      ]),
      (e) => seen.push(e),
      lookup,
    );
    try {
      await waitUntil(() => seen.length >= 1, { what: 'the first resolution' });
      assert.deepEqual(keys(seen[0]), ['10.0.0.1:50051', '10.0.0.2:50051', '10.0.0.9:80', '10.1.1.1:81']);
      assert.equal(seen[0]?.localities[0]?.endpoints[0]?.hostname, 'backend');
      table.set('backend', [{ address: '10.0.0.1' }, { address: '10.0.0.2' }, { address: '10.0.0.3' }]);
      await waitUntil(() => seen.length >= 2, { what: 'the scaled-out name to be handed over' });
      assert.deepEqual(keys(seen[1]), ['10.0.0.1:50051', '10.0.0.2:50051', '10.0.0.3:50051', '10.0.0.9:80', '10.1.1.1:81']);
      // A failing lookup keeps the last addresses: nothing new is handed over.
      table.set('backend', new Error('SERVFAIL'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(seen.length, 2);
    } finally {
      r.close();
    }
  });

  it('LOGICAL_DNS: the first address only', async () => {
    const { lookup } = scripted(new Map([['api', [{ address: '10.0.0.5' }, { address: '10.0.0.6' }]]]));
    let got: EndpointsModel | undefined;
    const r = new DnsResolver(model([['api', 443]], { strict: false }), (e) => (got = e), lookup);
    try {
      await waitUntil(() => got, { what: 'the resolution' });
      assert.deepEqual(keys(got), ['10.0.0.5:443']);
    } finally {
      r.close();
    }
  });

  it('respect_dns_ttl: the next lookup waits for the TTL, not the refresh rate', async () => {
    const { lookup, calls } = scripted(new Map([['slow', [{ address: '10.0.0.1', ttlS: 60 }]]]));
    const quick = scripted(new Map([['slow', [{ address: '10.0.0.1', ttlS: 60 }]]]));
    const a = new DnsResolver(model([['slow', 1]], { respectTtl: true }), () => undefined, lookup);
    const b = new DnsResolver(model([['slow', 1]], { respectTtl: false }), () => undefined, quick.lookup);
    try {
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(calls.get('slow'), 1, 'a 60 s TTL: one lookup');
      assert.ok((quick.calls.get('slow') ?? 0) >= 3, `the 20 ms refresh rate without TTL: ${quick.calls.get('slow')} lookups`);
    } finally {
      a.close();
      b.close();
    }
  });

  it('the system lookup resolves localhost through /etc/hosts, IPv4 only', async () => {
    assert.deepEqual(
      (await systemLookup('localhost', 'V4_ONLY', false)).map((a) => a.address),
      ['127.0.0.1'],
    );
    assert.deepEqual(
      (await systemLookup('localhost', 'V4_ONLY', true)).map((a) => a.address),
      ['127.0.0.1'],
    );
  });
});
