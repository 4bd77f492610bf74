/**
 * Seed 001: the Perl -> Go migration with Consul. A dev Consul agent; demo instances of
 * web-api-perl (two), web-api-go and web-asset registered in it with HTTP health checks; the
 * config (examples/seed-001/config.yaml) stored in Consul KV; consul-xds serving from KV and
 * Consul health, with a maintenance file and the access-log sink. The walkthrough shifts /api
 * 90/10 -> 50/50 -> 0/100 with `consul-xds weights set`, flips the maintenance file, and counts
 * the access-log lines that reached the sink.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Example } from './examples.js';
import { curlTally, step } from './examples.js';
import { ackedVersions, formatTally, get, tally } from './stack.js';

const HOST = 'www.mirrativ.com';
const INSTANCES = [
  ['web-api-perl', 'web-api-perl-1', 8081],
  ['web-api-perl', 'web-api-perl-2', 8084],
  ['web-api-go', 'web-api-go-1', 8082],
  ['web-asset', 'web-asset-1', 8083],
] as const;

export const seed001: Example = {
  title: 'Perl -> Go migration with Consul: weights 90/10 -> 50/50 -> 0/100, maintenance file, access logs',
  readme: 'examples/seed-001/README.md',
  async run(stack) {
    const print = stack.opts.print;
    const consul = await stack.consul();
    print(`Consul dev agent: ${consul} (UI and API)`);
    for (const [service, id, port] of INSTANCES) {
      const u = await stack.upstream(id, 'http1', port);
      await register(consul, { ID: id, Name: service, Address: '127.0.0.1', Port: u.port });
    }
    print(`registered in Consul: ${INSTANCES.map(([s, id]) => `${id} (${s})`).join(', ')}, each with an HTTP check on /health_check`);
    print(
      `  one of them by hand: curl -X PUT ${consul}/v1/agent/service/register -d '{"ID":"web-api-perl-1","Name":"web-api-perl","Address":"127.0.0.1","Port":${stack.p(8081)},"Check":{"HTTP":"http://127.0.0.1:${stack.p(8081)}/health_check","Interval":"1s"}}'`,
    );
    const config = await stack.writeConfig('examples/seed-001/config.yaml');
    const consulFlag = `--consul ${consul}`;
    print(`config stored in Consul KV: ${await stack.cli(['kv', 'put', '--consul', consul, '--file', config])}`);
    const maintenance = join(stack.dir, 'maintenance');
    const { adminUrl, accessLog } = await stack.serve(['--consul', consul, '--maintenance-file', maintenance]);
    await stack.dataPlane();
    const edge = `http://127.0.0.1:${stack.p(8000)}`;
    let sent = 0;
    const count = async (n: number) => {
      sent += n;
      return formatTally(await tally(`${edge}/api/`, n, { host: HOST }));
    };
    await stack.waitFor('every /api instance to pass its health check', async () => {
      sent += 1;
      const r = await get(`${edge}/api/`, { host: HOST });
      return r.status === 200 && r.upstream;
    });
    const curl = (n: number) => curlTally(`-H 'Host: ${HOST}' ${edge}/api/`, n);

    step(stack, {
      title: "90/10: the seed's split on /api",
      command: curl(200),
      expect: 'about 180 web-api-perl (both instances), 20 web-api-go',
      got: await count(200),
    });

    for (const [perl, go, expect] of [
      [50, 50, 'about 100 web-api-perl, 100 web-api-go'],
      [0, 100, 'web-api-go-1 200 (web-api-perl is out of rotation)'],
    ] as const) {
      const before = await ackedVersions(adminUrl);
      const args = ['weights', 'set', '/api', `web-api-perl=${perl}`, `web-api-go=${go}`];
      await stack.cli([...args, '--consul', consul]);
      await stack.waitFor('the data plane to ACK the new weights', async () => {
        const now = await ackedVersions(adminUrl);
        return now !== undefined && now !== before;
      });
      step(stack, {
        title: `${perl}/${go}: shift the weights in Consul KV (check-and-set), no restart`,
        command: `npx consul-xds ${args.join(' ')} ${consulFlag}\n${curl(200)}`,
        expect,
        got: await count(200),
      });
    }

    const health = async () => {
      const res = await fetch(`${adminUrl}/health`);
      return `${res.status} ${(await res.text()).trim()}`;
    };
    const ok = await stack.waitFor('/health to say OK', async () => {
      const h = await health();
      return h.startsWith('200') && h;
    });
    await writeFile(maintenance, '');
    const during = await health();
    await rm(maintenance);
    const after = await health();
    step(stack, {
      title: 'the maintenance file takes this Envoy out of the cloud load balancer',
      command: `curl -s -w ' %{http_code}\\n' ${adminUrl}/health; touch ${maintenance}; curl -s -w ' %{http_code}\\n' ${adminUrl}/health; rm ${maintenance}`,
      expect: 'OK 200, then MAINTENANCE 599, and 200 again once the file is gone',
      got: `${ok} | with the file: ${during} | removed: ${after}`,
    });

    const lines = async () => (await readFile(accessLog, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
    const all = await stack.waitFor(`${sent} access-log lines at the sink`, async () => {
      const l = await lines();
      return l.length >= sent && l;
    });
    const last = JSON.parse(all[all.length - 1] as string) as Record<string, unknown>;
    step(stack, {
      title: "access logs arrive at consul-xds' sink over gRPC (ALS), one JSON line per request",
      command: `tail -n 1 ${accessLog}`,
      expect: `${sent} lines, one per request sent above`,
      got: `${all.length} lines; the last: ${JSON.stringify(pick(last, ['method', 'path', 'authority', 'status', 'upstream_cluster', 'upstream_host']))}`,
    });
  },
};

function pick(o: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}

/** Registers one instance with the local agent, with an HTTP check on /health_check every second. */
async function register(consul: string, s: { ID: string; Name: string; Address: string; Port: number }): Promise<void> {
  const res = await fetch(`${consul}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ ...s, Check: { HTTP: `http://${s.Address}:${s.Port}/health_check`, Interval: '1s', Status: 'passing' } }),
  });
  if (!res.ok) throw new Error(`Consul refused to register ${s.ID}: ${res.status} ${await res.text()}`);
}
