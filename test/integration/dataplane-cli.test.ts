/**
 * `consul-xds proxy` as a separate process (src/commands/proxy.ts run()), the way operators and
 * the benchmark start it: flags -> ADS to `serve()` -> /ready LIVE on the admin port -> traffic
 * through its listener -> SIGTERM ends it with exit code 0. Also: a usage error names the
 * missing flags.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type RunningApp } from '../../src/app.js';
import { silentLogger } from '../../src/log.js';
import { startUpstream, type Upstream } from '../support/upstreams.js';
import { send } from '../support/traffic.js';
import { freePort, GiveUp, makeTempDir, waitUntil } from '../support/tmp.js';

const COMMAND = fileURLToPath(new URL('../../src/commands/proxy.js', import.meta.url));

/** Runs the command module's run(argv) in a child process (cli.ts registration aside). */
function spawnProxy(args: string[]): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', `const m = await import(${JSON.stringify(COMMAND)}); process.exitCode = await m.run(process.argv.slice(1));`, '--', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONSUL_XDS_LOG_LEVEL: 'warn' } },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exit };
}

describe('consul-xds proxy (separate process)', () => {
  let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
  let app: RunningApp | undefined;
  let web: Upstream | undefined;
  let proc: ReturnType<typeof spawnProxy> | undefined;
  let listener = 0;

  before(async () => {
    dir = await makeTempDir('dataplane-cli');
    web = await startUpstream('web');
    listener = await freePort();
    const configFile = join(dir.path, 'c.yaml');
    await writeFile(
      configFile,
      `listener: { edge: { address: "127.0.0.1", port: ${listener} } }
route: { domain: ["*"], cluster: { web: { prefix: ["/"] } } }
cluster: { loadbalancer: { web: {} } }
endpoint: { eds: { web: { static: [{ address: "127.0.0.1", port: ${web.port} }] } } }
`,
    );
    app = await serve({ configFile, xds: { host: '127.0.0.1', port: 0 }, admin: false, als: false, logger: silentLogger });
  });

  after(async () => {
    if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
    await app?.close();
    await web?.close();
    await dir?.remove();
  });

  it('starts from flags, turns LIVE, proxies, and exits 0 on SIGTERM', async () => {
    const admin = await freePort();
    proc = spawnProxy(['--xds', `127.0.0.1:${app?.xdsPort}`, '--node-id', 'cli-node', '--node-cluster', 'edge', '--locality', 'r1/z1', '--admin-port', String(admin)]);
    const p = proc;
    await waitUntil(
      async () => {
        if (p.child.exitCode !== null) throw new GiveUp(`proxy exited early: ${p.output()}`);
        const r = await fetch(`http://127.0.0.1:${admin}/ready`);
        return (await r.text()).trim() === 'LIVE';
      },
      { what: 'the proxy process to be LIVE', context: () => p.output() },
    );
    const r = await send({ port: listener, host: 'x', path: '/hello' });
    assert.equal(r.status, 200);
    assert.equal(r.upstream, 'web');
    const info = (await (await fetch(`http://127.0.0.1:${admin}/server_info`)).json()) as { node: { id: string; locality: { zone: string } } };
    assert.equal(info.node.id, 'cli-node');
    assert.equal(info.node.locality.zone, 'z1');
    p.child.kill('SIGTERM');
    assert.equal(await p.exit, 0, p.output());
  });

  it('names missing flags', async () => {
    const p = spawnProxy(['--node-id', 'x']);
    const code = await p.exit;
    assert.notEqual(code, 0);
    assert.match(p.output(), /missing --xds, --node-cluster/);
  });
});
