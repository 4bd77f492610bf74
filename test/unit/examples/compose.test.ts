/**
 * docker-compose.yml, checked without Docker: every file and folder it names exists (and what
 * the Dockerfile copies); every consul-xds command it runs parses with the real CLI (run with
 * `--help` appended, which checks every flag and starts nothing); the config it stores in KV is
 * valid; the images are the versions the tests use (scripts/install-envoy.sh's pin, Consul
 * 1.8.7 of scripts/install-consul.sh); no bind mount covers the checkout (and so the host's
 * node_modules); every depends_on waits for a health check the dependency defines.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseConfig } from '../../../src/config/parse.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CLI = join(ROOT, 'dist', 'src', 'cli.js');

interface Service {
  readonly image?: string;
  readonly build?: string | { readonly context: string; readonly dockerfile?: string };
  readonly command?: string | readonly string[];
  readonly entrypoint?: string | readonly string[];
  readonly volumes?: readonly string[];
  readonly depends_on?: Readonly<Record<string, { readonly condition: string }>> | readonly string[];
  readonly healthcheck?: { readonly test: readonly string[] };
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = Object.entries(compose.services);

/** The consul-xds command lines a service runs: its command array, or the `node dist/src/cli.js ...` parts of an `sh -c` string. */
function cliCommands(s: Service): string[][] {
  const command = s.command ?? [];
  if (s.entrypoint === undefined) return Array.isArray(command) ? [[...command]] : [String(command).split(/\s+/)];
  const script = (Array.isArray(command) ? command : [command]).join(' ');
  return [...script.matchAll(/node dist\/src\/cli\.js ([^&|()]*)/g)].map((m) => (m[1] as string).trim().split(/\s+/));
}

it('every file and folder docker-compose.yml names exists, and what the Dockerfile copies', () => {
  for (const [name, s] of services) {
    if (s.build !== undefined) {
      const context = typeof s.build === 'string' ? s.build : s.build.context;
      const dockerfile = join(ROOT, context, typeof s.build === 'string' ? 'Dockerfile' : (s.build.dockerfile ?? 'Dockerfile'));
      assert.ok(existsSync(dockerfile), `${name}: ${dockerfile}`);
      for (const m of readFileSync(dockerfile, 'utf8').matchAll(/^COPY (.+) \S+$/gm)) {
        for (const src of (m[1] as string).split(/\s+/)) assert.ok(existsSync(join(ROOT, context, src)), `${name}: Dockerfile COPY ${src}`);
      }
    }
    for (const v of s.volumes ?? []) {
      const host = v.split(':')[0] as string;
      assert.ok(existsSync(join(ROOT, host)), `${name}: volume ${host}`);
      assert.notEqual(normalize(host).replace(/\/$/, ''), '.', `${name}: a bind mount of the checkout would cover the host's node_modules`);
      assert.doesNotMatch(v, /node_modules/, `${name}: ${v}`);
    }
    for (const args of cliCommands(s)) for (const a of args) if (/^(examples|scripts|src)\//.test(a)) assert.ok(existsSync(join(ROOT, a)), `${name}: ${a}`);
  }
});

it('every consul-xds command in it parses (flags included), and the config it stores is valid', () => {
  const commands = services.filter(([, s]) => s.build !== undefined).flatMap(([name, s]) => cliCommands(s).map((args) => [name, args] as const));
  assert.ok(commands.length >= 5, `found ${commands.length} commands`);
  for (const [name, args] of commands) {
    const r = spawnSync(process.execPath, [CLI, ...args, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${name}: consul-xds ${args.join(' ')}: ${r.stderr}`);
  }
  const stored = commands.find(([, a]) => a[0] === 'kv' && a[1] === 'put')?.[1];
  const file = stored?.[stored.indexOf('--file') + 1];
  assert.ok(file, 'a kv put --file stores the config');
  parseConfig(readFileSync(join(ROOT, file), 'utf8'), file);
});

it('the images are the Envoy and Consul versions the tests use', () => {
  const envoyPin = /ENVOY_VERSION:-([0-9.]+)/.exec(readFileSync(join(ROOT, 'scripts', 'install-envoy.sh'), 'utf8'))?.[1];
  assert.equal(compose.services.envoy?.image, `envoyproxy/envoy:v${envoyPin}`);
  const consulVersion = /\(bullseye, ([0-9.]+)\)/.exec(readFileSync(join(ROOT, 'scripts', 'install-consul.sh'), 'utf8'))?.[1];
  assert.equal(compose.services.consul?.image, `consul:${consulVersion}`);
  // The binary the tests run says the same (when it is installed).
  const bin = process.env.ENVOY_BIN;
  if (bin && existsSync(bin)) assert.match(execFileSync(bin, ['--version'], { encoding: 'utf8' }), new RegExp(`/${envoyPin}/`));
});

it('every depends_on waits for a health check the dependency defines', () => {
  for (const [name, s] of services) {
    const deps = s.depends_on ?? {};
    assert.ok(!Array.isArray(deps), `${name}: depends_on without a condition starts before the dependency is ready`);
    for (const [dep, { condition }] of Object.entries(deps as Record<string, { condition: string }>)) {
      assert.equal(condition, 'service_healthy', `${name} -> ${dep}`);
      assert.ok(compose.services[dep]?.healthcheck, `${dep} has a healthcheck`);
    }
  }
});
