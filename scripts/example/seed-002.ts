/**
 * Seed 002: an HTTP/2 upstream with many worker processes (`consul-xds demo-upstream --protocol
 * h2c --workers 4`, one port, each connection to one process) behind a per-connection stream
 * limit, and a circuit breaker. The walkthrough counts which processes answered (with the limit
 * Envoy opens many connections, so all of them) and sends a burst of slow requests that the
 * circuit breaker partly refuses with 503.
 */
import type { Example } from './examples.js';
import { curlTally, step } from './examples.js';
import { CLI, clusterStats, formatTally, tally } from './stack.js';

const WORKERS = 4;

/** The cluster counters that tell why a request got a 503: breaker overflows, connect failures, resets, retries. */
const WHY_503 =
  /^(upstream_cx_(total|overflow|connect_fail|connect_timeout|destroy_(local|remote)|close_notify|protocol_error)|upstream_rq_(total|active_overflow|pending_(total|overflow|failure_eject)|503|(rx|tx)_reset|retry(_overflow)?|timeout))$/;

export const seed002: Example = {
  title: 'an HTTP/2 upstream with many worker processes, a per-connection stream limit, a circuit breaker',
  readme: 'examples/seed-002/README.md',
  async run(stack) {
    const config = await stack.writeConfig('examples/seed-002/config.yaml');
    const port = stack.p(50051);
    stack.spawn('inference', process.execPath, [
      CLI,
      'demo-upstream',
      '--name',
      'inference',
      '--protocol',
      'h2c',
      '--workers',
      String(WORKERS),
      '--port',
      String(port),
    ]);
    await stack.waitFor('the inference workers to listen', async () => (await stack.logTail('inference')).includes('workers on'), 'inference');
    await stack.serve(['--config', config]);
    const admin = await stack.dataPlane();
    const edge = `http://127.0.0.1:${stack.p(10000)}`;
    await stack.waitFor('the listener to answer 200', async () => (await fetch(`${edge}/predict`)).status === 200);
    step(stack, {
      title: 'max-concurrent-streams: 1 spreads 6 requests in flight over 6 connections, so over every process',
      command: `${curlTally(`${edge}/predict`, 200)}   # with 6 in flight (e.g. xargs -P 6)`,
      expect: `all ${WORKERS} processes answer (inference/w1 .. inference/w${WORKERS}); without the limit one connection would reach one process`,
      got: formatTally(await tally(`${edge}/predict`, 200, { concurrency: 6 })),
      ...(admin ? { stats: await clusterStats(admin, 'inference', WHY_503) } : {}),
    });
    step(stack, {
      title: 'circuit-breakers: 32 slow requests at once, at most 8 active and 8 pending',
      command: `seq 32 | xargs -P 32 -I{} curl -s -o /dev/null -w '%{http_code}\\n' '${edge}/predict?delay=1000' | sort | uniq -c`,
      expect: 'at most 16 answered by the workers (Envoy: 8 run, up to 8 wait), the rest refused at once with 503 (x-envoy-overloaded)',
      got: formatTally(await tally(`${edge}/predict?delay=1000`, 32, { concurrency: 32 })),
      ...(admin ? { stats: await clusterStats(admin, 'inference', WHY_503) } : {}),
    });
  },
};
