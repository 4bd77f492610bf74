/**
 * The command line's edges, through the real `consul-xds` binary (dist/src/cli.js) as a user runs
 * it: a misspelt flag or command gets a did-you-mean (not Node's parseArgs text) and exit code 2,
 * as every usage error does; `--version`; `--log-level` is checked; a port in use names the flag
 * that moves it (serve: --xds-port, --admin-port, --als-port/--no-als; proxy: --admin-port); a
 * bad config file is refused before any port is bound; `validate --config FILE` works as `serve`
 * takes it; `demo-upstream --workers N` answers from N processes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, waitUntil } from '../support/tmp.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const EXAMPLE = join(ROOT, 'examples', 'consul-xds.yaml');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000, env: { ...process.env, CONSUL_XDS_LOG_LEVEL: 'warn' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A loopback port held by this process until close(). */
async function holdPort(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

describe('usage errors: a did-you-mean and exit code 2', () => {
  it('a misspelt flag names the flag and the one meant', async () => {
    const r = await run(['serve', '--config', EXAMPLE, '--als-prot', '9001']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /serve: unknown flag --als-prot; did you mean --als-port\? \(run 'consul-xds serve --help' for its options\) \[CXDS_USAGE\]/);
    assert.doesNotMatch(r.stderr, /To specify an option argument|positional argument/, "Node's parseArgs advice is not shown");
    const proxy = await run(['proxy', '--bootstap', 'b.yaml']);
    assert.equal(proxy.code, 2);
    assert.match(proxy.stderr, /unknown flag --bootstap; did you mean --bootstrap\?/);
    const far = await run(['validate', '--zzzzzzzz']);
    assert.equal(far.code, 2);
    assert.match(far.stderr, /validate: unknown flag --zzzzzzzz \(run/, 'no suggestion when nothing is close');
  });

  it('a misspelt command gets a did-you-mean', async () => {
    const r = await run(['serv']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'serv'; did you mean 'serve'\?/);
  });

  it('a flag value that is not allowed, a missing value and a missing source are usage errors too', async () => {
    for (const [args, message] of [
      [['serve', '--config', EXAMPLE, '--log-level', 'loud'], /--log-level: expected one of trace, debug, info, warn, error, fatal, silent, got 'loud'/],
      [['proxy', '--xds', '127.0.0.1:1', '--node-id', 'n', '--node-cluster', 'c', '--log-level', 'verbose'], /--log-level: expected one of .* got 'verbose'/],
      [['serve', '--config'], /serve: Option '--config <value>' argument missing/],
      [['serve'], /serve: give either --config FILE or --consul\/--consul-key/],
      [['validate', EXAMPLE, '--config-max-bytes', '0'], /--config-max-bytes: expected a number of bytes/],
      [['demo-upstream', '--name', 'x', '--port', '0', '--protocol', 'h3'], /--protocol: expected one of http1, h2c, grpc, tcp, got 'h3'/],
    ] as const) {
      const r = await run([...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});

it('--version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const r = await run(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `consul-xds ${version}\n`);
});

it('validate takes --config FILE as serve does, and refuses two files', async () => {
  const r = await run(['validate', '--config', EXAMPLE]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /consul-xds\.yaml: valid\n {2}CDS /);
  const two = await run(['validate', '--config', EXAMPLE, EXAMPLE]);
  assert.equal(two.code, 2);
  assert.match(two.stderr, /validate: one config file, got 2/);
});

describe('a port in use names the flag that moves it (exit 1)', () => {
  let held: Awaited<ReturnType<typeof holdPort>>;
  before(async () => {
    held = await holdPort();
  });
  after(async () => held.close());

  const serveOn = (flags: Record<string, string>) => {
    const ports = { '--xds-port': '0', '--admin-port': '0', '--als-port': '0', ...flags };
    return run(['serve', '--config', EXAMPLE, ...Object.entries(ports).flat()]);
  };

  for (const [flag, named] of [
    ['--xds-port', /--xds-port \/ --xds-host: xds cannot listen on 127\.0\.0\.1:(\d+): the address is in use/],
    ['--admin-port', /--admin-port \/ --admin-host: admin cannot listen on 127\.0\.0\.1:(\d+): the address is in use/],
    ['--als-port', /--als-port \/ --als-host \(or --no-als\): als cannot listen on 127\.0\.0\.1:(\d+): the address is in use/],
  ] as const) {
    it(`serve ${flag}`, async () => {
      const r = await serveOn({ [flag]: String(held.port) });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(named.exec(r.stderr)?.[1], String(held.port), r.stderr);
      assert.match(r.stderr, /\[CXDS_LISTEN\]/);
    });
  }

  it('proxy --admin-port', async () => {
    const r = await run(['proxy', '--xds', '127.0.0.1:1', '--node-id', 'n', '--node-cluster', 'c', '--admin-port', String(held.port)]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`--admin-port / --admin-host \\(or --no-admin\\): admin cannot listen on 127\\.0\\.0\\.1:${held.port}: the address is in use`),
    );
  });

  it('serve reads and validates the config file before it binds any port', async () => {
    const dir = await makeTempDir('cli-edges');
    try {
      const bad = join(dir.path, 'bad.yaml');
      await writeFile(bad, 'listener: {}\ncluster: { loadbalancer: {} }\nbogus: 1\n');
      // Every port it would bind is taken: the config's refusal must come first.
      const p = String(held.port);
      const r = await run(['serve', '--config', bad, '--xds-port', p, '--admin-port', p, '--als-port', p]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /bad\.yaml: bogus: unknown key .*\(line 3, col 1\) \[CXDS_CONFIG_INVALID\]/);
      assert.doesNotMatch(r.stderr, /cannot listen/);
    } finally {
      await dir.remove();
    }
  });
});

it('demo-upstream --workers 3 --protocol h2c: connections land on different worker processes', async () => {
  const child = spawn(process.execPath, [CLI, 'demo-upstream', '--name', 'inference', '--port', '0', '--protocol', 'h2c', '--workers', '3'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    const port = await waitUntil(() => /3 h2c workers on 127\.0\.0\.1:(\d+)/.exec(err)?.[1], { what: `the workers to listen (${err})` });
    const names = new Set<string>();
    for (let i = 0; i < 12; i++) {
      // A new HTTP/2 connection each time: node:cluster hands each to one worker, round robin.
      const session = http2.connect(`http://127.0.0.1:${port}`);
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':path': '/predict' });
        let text = '';
        req.setEncoding('utf8');
        req.on('data', (d: string) => (text += d));
        req.on('end', () => resolve(text));
        req.on('error', reject);
      });
      session.close();
      names.add((JSON.parse(body) as { upstream: string }).upstream);
    }
    assert.deepEqual([...names].sort(), ['inference/w1', 'inference/w2', 'inference/w3']);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});
