/**
 * `consul-xds ramp` end to end (test/support/ramp-fleet.ts): real Consul, two registered
 * sidecars whose access-log counts the ramp sums, two real Envoys, the seed's Perl and Go upstreams.
 * Windows are 2 s. Asserted on traffic through the Envoy and on the state recorded in Consul KV:
 * a healthy canary ramps 25 -> 100 and traffic through both Envoys follows each step; a canary that starts failing
 * after step 2 is at weight 0 at both Envoys within two windows and no step follows; a driver killed
 * mid-ramp is replaced and no step is skipped or repeated; a hand edit pauses the ramp and is
 * kept; a step written but not recorded is recorded, not written again; --dry-run writes nothing; `ramp status` lists a sidecar that does not answer.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { figuresOf, readFleet } from '../../src/ramp/fleet.js';
import { sha256, type RampState } from '../../src/ramp/spec.js';
import { BASELINE, CANARY, CONFIG_KEY, DOMAIN, PREFIX, RAMP_KEY, startRampFleet, type RampFleet } from '../support/ramp-fleet.js';
import { binomialBounds, send, sendMany, startLoad, type Load, type Tally } from '../support/traffic.js';
import { waitUntil } from '../support/tmp.js';

const RAMP = ['--step', '25', '--every', '2s', '--max-5xx-ratio', '5%', '--max-p99', '2s', '--min-requests', '20'];

let fleet: RampFleet;
let loads: Load[] = [];

interface CatalogEntry {
  readonly ServiceID: string;
  readonly ServiceMeta: Record<string, string>;
}

before(async () => {
  fleet = await startRampFleet();
});

after(async () => {
  await Promise.all(loads.map((l) => l.stop()));
  await fleet?.close();
});

/** Steady traffic through both listeners (so both sidecars hold part of the figures). */
function startTraffic(): void {
  loads = fleet.listeners.map((port) => startLoad({ port, host: DOMAIN, path: '/api/orders', concurrency: 1, pauseMs: 15 }));
}

/** Stops the traffic; the tallies of the whole run, per listener. */
async function stopTraffic(): Promise<Tally[]> {
  const failures = loads.flatMap((l) => l.failures.map((f) => `${f.status} ${f.upstream || '<envoy>'} ${f.body.slice(0, 100)}`));
  const tallies = await Promise.all(loads.map((l) => l.stop()));
  if (failures.length > 0) process.stderr.write(`first failures: ${failures.join(' | ')}\n`);
  loads = [];
  return tallies;
}

async function settled(what: string, timeoutMs = 60_000): Promise<RampState> {
  return waitUntil(
    async () => {
      const s = await fleet.state();
      return s && s.status !== 'running' ? s : undefined;
    },
    { what, timeoutMs, intervalMs: 100, context: async () => JSON.stringify(await fleet.state()) },
  );
}

const steps = (s: RampState) => s.history.filter((h) => h.event === 'step').map((h) => `${h.step}:${h.weight}`);

describe('consul-xds ramp on real Consul and Envoy', () => {
  beforeEach(async () => {
    await stopTraffic();
    await fleet.reset();
  });

  it('the fleet view sums both sidecars; ramp status lists one that does not answer', async () => {
    await sendMany({ port: fleet.listeners[0]!, host: DOMAIN, path: '/api/a', count: 30 });
    await sendMany({ port: fleet.listeners[1]!, host: DOMAIN, path: '/api/b', count: 20 });
    const perSidecar = await Promise.all(
      fleet.sidecars.map(async (app) => {
        const body = (await (await fetch(`http://127.0.0.1:${app.adminPort}/stats/clusters?seconds=60`)).json()) as {
          clusters: { cluster: string; requests: number }[];
        };
        return body.clusters.find((c) => c.cluster === BASELINE)?.requests ?? 0;
      }),
    );
    assert.deepEqual(perSidecar, [30, 20], 'each sidecar saw its own listener');
    const view = await readFleet(fleet.consul.client, 'consul-xds', 60);
    assert.equal(view.answered, 2);
    assert.equal(figuresOf(view, BASELINE).requests, 50, 'the fleet view is the sum');

    await fleet.consul.registerService({ Name: 'consul-xds', ID: 'consul-xds-gone', Address: '127.0.0.1', Port: 1, Meta: { admin: '127.0.0.1:1' } });
    try {
      const started = await fleet.run(['ramp', 'start', PREFIX, CANARY, ...RAMP, '--detach']);
      assert.equal(started.code, 0, started.stderr);
      const st = await fleet.run(['ramp', 'status', PREFIX, CANARY]);
      assert.equal(st.code, 0, st.stderr);
      assert.match(st.stdout, /2 of 3 sidecars answered/);
      assert.match(st.stdout, /not answering: consul-xds-gone \(127\.0\.0\.1:1\)/);
      const ab = await fleet.run(['ramp', 'abort', PREFIX, CANARY]);
      assert.equal(ab.code, 0, ab.stderr);
      assert.equal((await fleet.state())?.status, 'aborted');
    } finally {
      await fleet.consul.deregisterService('consul-xds-gone');
    }
  });

  it('--dry-run prints every step and writes nothing', async () => {
    const before = await fleet.consul.client.kvGet(CONFIG_KEY);
    const r = await fleet.run(['ramp', 'start', PREFIX, CANARY, ...RAMP, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    for (const [i, w] of [25, 50, 75, 100].entries()) assert.match(r.stdout, new RegExp(`step ${i + 1}: ${CANARY}=${w} ${BASELINE}=${100 - w}`));
    assert.match(r.stdout, /-\s+weight: 0\n\+\s+weight: 25/, 'the first step as a YAML diff');
    assert.equal((await fleet.consul.client.kvGet(CONFIG_KEY))?.modifyIndex, before?.modifyIndex, 'config untouched');
    assert.equal(await fleet.state(), undefined, 'no ramp recorded');
  });

  it('a healthy canary ramps 25 -> 100 in steps and traffic through both Envoys follows each step', async () => {
    startTraffic();
    const driver = fleet.spawn(['ramp', 'start', PREFIX, CANARY, ...RAMP]);
    // Sample while a step's weight has been in place for a while (propagation): each Envoy's
    // upstream counters over the sample, with requests on fresh connections so both get some.
    const samples = new Map<number, { go: number; n: number }[]>();
    for (;;) {
      const s1 = await fleet.state();
      if (s1 && s1.status !== 'running') break;
      if (!s1 || s1.step === 0 || s1.pending || Date.now() - s1.stepStartedAt < 600) {
        await sleep(50);
        continue;
      }
      const [go0, perl0] = await Promise.all([fleet.upstreamRequests(CANARY), fleet.upstreamRequests(BASELINE)]);
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let i = 0; i < 5; i++) await send({ port: fleet.listeners[i % 2]!, host: DOMAIN, path: '/api/sample' });
        }),
      );
      const [go1, perl1] = await Promise.all([fleet.upstreamRequests(CANARY), fleet.upstreamRequests(BASELINE)]);
      const s2 = await fleet.state();
      if (s2?.step !== s1.step || s2.pending) continue;
      const acc = samples.get(s1.weight) ?? fleet.envoys.map(() => ({ go: 0, n: 0 }));
      acc.forEach((a, i) => {
        const go = go1[i]! - go0[i]!;
        a.go += go;
        a.n += go + perl1[i]! - perl0[i]!;
      });
      samples.set(s1.weight, acc);
    }
    assert.equal(await driver.exited, 0, driver.output());
    const s = await settled('the ramp to finish');
    assert.equal(s.status, 'done', `${s.reason}\n${driver.output()}`);
    assert.deepEqual(steps(s), ['1:25', '2:50', '3:75', '4:100']);
    for (const w of [25, 50, 75, 100]) {
      for (const [i, got] of (samples.get(w) ?? []).entries()) {
        assert.ok(got.n >= 20, `traffic through Envoy ${i} at weight ${w}: ${JSON.stringify([...samples])}`);
        const { low, high } = binomialBounds(got.n, w / 100);
        assert.ok(
          got.go >= Math.floor(low) && got.go <= Math.ceil(high),
          `Envoy ${i} at weight ${w}: ${got.go} of ${got.n} on ${CANARY} (expected ${low.toFixed(0)}-${high.toFixed(0)})`,
        );
      }
      assert.equal(samples.get(w)?.length, 2, `both Envoys sampled at weight ${w}`);
    }
    const { go } = (await fleet.consul.client.kvGet(CONFIG_KEY))!.value.match(/web-api-go:.*\n.*\n\s+weight: (?<go>\d+)/)!.groups!;
    assert.equal(go, '100');
    assert.match(driver.output(), /"decision":"pass"/, 'one log line per decision');
    for (const t of await stopTraffic()) assert.equal(t.byStatus.get(200), t.total, `nothing lost while the weights moved: ${t.describe()}`);
  });

  it('a canary answering 5xx after step 2 is at weight 0 at both Envoys within two windows; no step follows', async (t) => {
    startTraffic();
    const driver = fleet.spawn(['ramp', 'start', PREFIX, CANARY, ...RAMP]);
    await waitUntil(async () => (await fleet.state())?.step === 2, { what: 'step 2', timeoutMs: 30_000, intervalMs: 20 });
    fleet.go.setResponseStatus(503);
    const firstBad = await waitUntil(() => fleet.go.firstFailureAt, { what: 'the canary to answer 503', intervalMs: 5 });
    const zeroAt = await waitUntil(async () => (await fleet.canaryWeightAtEnvoys()).every((w) => w === 0) && performance.now(), {
      what: 'web-api-go at weight 0 at both Envoys',
      timeoutMs: 20_000,
      intervalMs: 20,
    });
    const ms = zeroAt - firstBad;
    t.diagnostic(`first 5xx -> web-api-go weight 0 at both Envoys: ${ms.toFixed(0)} ms (window 2 s)`);
    assert.ok(ms < 4000, `rolled back within two windows: ${ms.toFixed(0)} ms`);
    assert.equal(await driver.exited, 3, driver.output());
    const s = await settled('the ramp to end');
    assert.equal(s.status, 'rolled-back');
    assert.deepEqual(steps(s), ['1:25', '2:50'], 'no step after the breach');
    const breach = s.history.find((h) => h.event === 'breach');
    assert.ok(breach?.canary && breach.canary.errors5xx > 0, JSON.stringify(breach));
    assert.match(s.reason ?? '', /web-api-go 5xx/);
    // The only failures are the canary's own 503s: the rollback itself lost no request.
    for (const t of await stopTraffic()) {
      assert.equal(t.count(''), 0, `no answer from the Envoy itself or a socket error: ${t.describe()}`);
      assert.equal(t.total - (t.byStatus.get(200) ?? 0), t.byStatus.get(503) ?? 0, t.describe());
    }
    const after = await sendMany({ port: fleet.listeners[0]!, host: DOMAIN, path: '/api/after', count: 100 });
    assert.equal(after.count(BASELINE), 100, after.describe());
  });

  it('a driver killed mid-ramp is replaced by serve --ramp-driver; no step is skipped or repeated', async (t) => {
    startTraffic();
    const first = fleet.spawn(['ramp', 'start', PREFIX, CANARY, ...RAMP]);
    t.after(() => first.child.kill('SIGKILL')); // a failed wait must not leave this driver running into the next test
    await waitUntil(async () => ((await fleet.state())?.step ?? 0) >= 2, {
      what: 'step 2',
      timeoutMs: 30_000,
      intervalMs: 50,
      context: async () => `ramp state: ${JSON.stringify(await fleet.state())}\ndriver output:\n${first.output()}`,
    });
    first.child.kill('SIGKILL');
    await first.exited;
    const killedAt = (await fleet.state())!;
    // The second driver: a serve that also registers itself (its counts join the fleet view).
    const second = fleet.spawn([
      'serve',
      '--xds-port',
      '0',
      '--admin-port',
      '0',
      '--als-port',
      '0',
      '--access-log-file',
      '/dev/null',
      '--register',
      '--register-id',
      'consul-xds-driver',
      '--ramp-driver',
    ]);
    try {
      const admin = await waitUntil(() => /Admin: http:\/\/(127\.0\.0\.1:\d+)\//.exec(second.output())?.[1], {
        what: 'serve --ramp-driver to start',
        context: second.output,
      });
      const entry = await waitUntil(
        async () =>
          ((await (await fetch(`${fleet.consul.address}/v1/catalog/service/consul-xds`)).json()) as CatalogEntry[]).find(
            (e) => e.ServiceID === 'consul-xds-driver',
          ),
        { what: 'serve --register in the catalog' },
      );
      assert.equal(entry.ServiceMeta.admin, admin);
      const s = await settled('the second driver to finish the ramp', 90_000);
      assert.equal(s.status, 'done', `${s.reason}\n${second.output()}`);
      assert.deepEqual(steps(s), ['1:25', '2:50', '3:75', '4:100'], `killed at step ${killedAt.step}`);
      const metrics = await (await fetch(`http://${admin}/metrics`)).text();
      assert.match(metrics, /^consul_xds_ramp_step\{ramp="web-api-go_api"\} 4$/m);
      assert.match(metrics, /^consul_xds_ramp_weight\{ramp="web-api-go_api"\} 100$/m);
      assert.match(metrics, /^consul_xds_ramp_decisions_total\{ramp="web-api-go_api",decision="pass"\} [1-9]/m);
    } finally {
      second.child.kill('SIGTERM');
      assert.equal(await second.exited, 0, second.output());
    }
    const left = (await (await fetch(`${fleet.consul.address}/v1/catalog/service/consul-xds`)).json()) as CatalogEntry[];
    assert.ok(!left.some((e) => e.ServiceID === 'consul-xds-driver'), 'deregistered at shutdown');
  });

  it('a step a dead driver wrote but did not record is recorded, not written again', async () => {
    const started = await fleet.run(['ramp', 'start', PREFIX, CANARY, ...RAMP, '--detach']);
    assert.equal(started.code, 0, started.stderr);
    // What a driver killed between its config write and its commit leaves: step 1 pending, written.
    const before = (await fleet.consul.client.kvGet(CONFIG_KEY))!;
    const set = await fleet.run(['weights', 'set', PREFIX, `${CANARY}=25`, `${BASELINE}=75`]);
    assert.equal(set.code, 0, set.stderr);
    const written = (await fleet.consul.client.kvGet(CONFIG_KEY))!;
    const raw = (await fleet.consul.client.kvGet(RAMP_KEY))!;
    const state = JSON.parse(raw.value) as RampState;
    const pending = { step: 1, weight: 25, sha256: sha256(written.value), fromIndex: before.modifyIndex };
    assert.ok(await fleet.consul.client.kvPut(RAMP_KEY, JSON.stringify({ ...state, pending }), { cas: raw.modifyIndex }));

    const driver = fleet.spawn(['ramp', 'resume', PREFIX, CANARY]);
    const s = await waitUntil(
      async () => {
        const st = await fleet.state();
        return st?.step === 1 && !st.pending ? st : undefined;
      },
      { what: 'the pending step to be recorded', timeoutMs: 30_000, context: driver.output },
    );
    assert.deepEqual(steps(s), ['1:25']);
    assert.equal(s.lastWrite.index, written.modifyIndex);
    assert.equal((await fleet.consul.client.kvGet(CONFIG_KEY))?.modifyIndex, written.modifyIndex, 'not written again');
    assert.match(driver.output(), /wrote this step but did not record it/);
    driver.child.kill('SIGINT');
    assert.equal(await driver.exited, 0, driver.output());
    assert.equal((await fleet.run(['ramp', 'abort', PREFIX, CANARY])).code, 0);
  });

  it('a hand edit of the config pauses the ramp and is not overwritten', async () => {
    startTraffic();
    const driver = fleet.spawn(['ramp', 'start', PREFIX, CANARY, ...RAMP, '--every', '3s']);
    await waitUntil(async () => (await fleet.state())?.step === 1, { what: 'step 1', timeoutMs: 30_000, intervalMs: 20 });
    const text = (await fleet.consul.client.kvGet(CONFIG_KEY))!.value;
    const edited = text.replace('# the old app', '# the old app (on call: ops)');
    await fleet.consul.kvPut(CONFIG_KEY, edited);
    assert.equal(await driver.exited, 0, driver.output());
    const s = await settled('the ramp to pause');
    assert.equal(s.status, 'paused');
    assert.match(s.reason ?? '', /edited by someone else/);
    assert.equal((await fleet.consul.client.kvGet(CONFIG_KEY))?.value, edited, 'the hand edit stays');
    assert.deepEqual(steps(s), ['1:25']);
    const ab = await fleet.run(['ramp', 'abort', PREFIX, CANARY]);
    assert.equal(ab.code, 0, ab.stderr);
    const final = (await fleet.consul.client.kvGet(CONFIG_KEY))!.value;
    assert.match(final, /on call: ops/, 'abort kept the hand edit');
    assert.match(final, /web-api-go:.*\n.*\n\s+weight: 0/);
  });
});
