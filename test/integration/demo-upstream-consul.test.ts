/**
 * `consul-xds demo-upstream --consul URL` (what docker-compose.yml's demo services run): each port
 * is registered in the Consul agent as an instance of the service with a health check that
 * passes, and deregistered when the process gets SIGTERM.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startConsul, type ConsulAgent } from '../support/consul.js';
import { waitUntil } from '../support/tmp.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
let consul: ConsulAgent;

before(async () => {
  consul = await startConsul();
});
after(async () => consul?.destroy());

interface HealthEntry {
  readonly Service: { readonly Address: string; readonly Port: number };
  readonly Checks: ReadonlyArray<{ readonly Status: string }>;
}

it('registers each port with a passing check, and deregisters on SIGTERM', async () => {
  const child = spawn(
    process.execPath,
    [CLI, 'demo-upstream', '--name', 'web-api-go', '--port', '0', '--port', '0', '--consul', consul.address, '--advertise', '127.0.0.1'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = once(child, 'exit');
  const health = async () => {
    const res = await fetch(`${consul.address}/v1/health/service/web-api-go`);
    return (await res.json()) as HealthEntry[];
  };
  try {
    const ports = await waitUntil(
      () => {
        const bound = [...err.matchAll(/ on 127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
        return bound.length === 2 && bound;
      },
      { what: `two ports (${err})` },
    );
    const passing = await waitUntil(
      async () => {
        const entries = await health();
        return entries.length === 2 && entries.every((e) => e.Checks.every((c) => c.Status === 'passing')) && entries;
      },
      { what: 'two passing instances in Consul', context: async () => `${JSON.stringify(await health())}\n${err}` },
    );
    assert.deepEqual(passing.map((e) => `${e.Service.Address}:${e.Service.Port}`).sort(), ports.map((p) => `127.0.0.1:${p}`).sort());
  } finally {
    child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, err);
  }
  assert.deepEqual(await health(), [], 'deregistered on exit');
});
