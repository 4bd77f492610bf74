/**
 * Canary ramp benchmark: how long a bad canary keeps serving. The fleet of the ramp tests
 * (test/support/ramp-fleet.ts: real Consul, two registered sidecars, two real Envoys, the seed's
 * Perl and Go upstreams) under steady traffic; `consul-xds ramp start /api web-api-go` runs with
 * the default gate (5xx 1 %, p99 300 ms, 200 requests) and a 5 s window; once step 1 (10 %) is
 * in place the canary starts answering 503. Measured: from its first 503 to both Envoys holding
 * web-api-go at weight 0 (their route config dumps), per run, next to Flagger's default detection
 * budget (interval 1 min x threshold 5 failed checks) as the reference.
 *
 *   npm run build && npm run bench:ramp -- [--runs 3] [--every 5s]
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { CANARY, DOMAIN, PREFIX, startRampFleet } from '../test/support/ramp-fleet.js';
import { startLoad } from '../test/support/traffic.js';
import { median } from './bench/stats.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, every: { type: 'string', default: '5s' } } });
const runs = Number(values.runs);
const FLAGGER_S = 60 * 5;

async function main(): Promise<void> {
  const fleet = await startRampFleet();
  const results: number[] = [];
  try {
    for (let run = 1; run <= runs; run++) {
      await fleet.reset();
      const loads = fleet.listeners.map((port) => startLoad({ port, host: DOMAIN, path: '/api/orders', concurrency: 2, pauseMs: 5, maxRequests: 1e6 }));
      const driver = fleet.spawn(['ramp', 'start', PREFIX, CANARY, '--every', values.every]);
      while ((await fleet.state())?.step !== 1) await sleep(20);
      fleet.go.setResponseStatus(503);
      while (fleet.go.firstFailureAt === undefined) await sleep(2);
      const firstBad = fleet.go.firstFailureAt;
      while ((await fleet.canaryWeightAtEnvoys()).some((w) => w !== 0)) await sleep(20);
      const ms = performance.now() - firstBad;
      results.push(ms);
      await driver.exited;
      const s = await fleet.state();
      await Promise.all(loads.map((l) => l.stop()));
      process.stdout.write(`run ${run}: first 503 -> web-api-go weight 0 at both Envoys: ${(ms / 1000).toFixed(2)} s (${s?.status}: ${s?.reason})\n`);
    }
  } finally {
    await fleet.close();
  }
  const med = median(results) / 1000;
  process.stdout.write(
    `\n| detection to rollback (window ${values.every}) | seconds |\n|---|---|\n` +
      `| consul-xds ramp, median of ${runs} (max ${(Math.max(...results) / 1000).toFixed(2)}) | ${med.toFixed(2)} |\n` +
      `| Flagger default budget (interval 1m x threshold 5) | ${FLAGGER_S} |\n`,
  );
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack}\n`);
  process.exitCode = 1;
});
