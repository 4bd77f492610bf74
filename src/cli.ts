#!/usr/bin/env node
/**
 * The `consul-xds` command. In: argv. Out: an exit code. Each subcommand lives in
 * src/commands/<name>.ts and exports `run(argv)`; this file only dispatches and prints usage.
 * Exit codes: 0 done, 1 failed (a bad config, Consul unreachable, a port in use, ...), 2 the
 * command line is wrong (CXDS_USAGE: an unknown command or flag, a bad flag value).
 */
import { readFileSync } from 'node:fs';
import { closest } from './commands/args.js';
import { ConsulXdsError } from './errors.js';

interface Command {
  readonly summary: string;
  load(): Promise<{ run(argv: string[]): Promise<number> }>;
}

const COMMANDS: Record<string, Command> = {
  serve: { summary: 'serve xDS from a config file or Consul KV (+ Consul health -> EDS)', load: () => import('./commands/serve.js') },
  validate: { summary: 'check a config file and print the Envoy resources it becomes', load: () => import('./commands/validate.js') },
  proxy: { summary: 'run the bundled TS data plane: a small proxy configured over xDS', load: () => import('./commands/proxy.js') },
  kv: { summary: 'get | put | validate the config stored in Consul KV', load: () => import('./commands/kv.js') },
  'demo-upstream': {
    summary: 'a demo upstream (HTTP/1.1, h2c, gRPC or TCP echo) that names itself in every answer',
    load: () => import('./commands/demo-upstream.js'),
  },
  weights: { summary: 'weights set <prefix> <cluster>=<w> ...: shift traffic in Consul KV (check-and-set)', load: () => import('./commands/weights.js') },
  ramp: { summary: 'ramp start|status|pause|resume|abort: canary weight steps gated on the access logs', load: () => import('./commands/ramp.js') },
  status: { summary: 'the connected xDS clients as a table (from the admin port or CSDS)', load: () => import('./commands/status.js') },
};

export const USAGE = `consul-xds - an Envoy xDS control plane fed by Consul

Usage: consul-xds <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`)
  .join('\n')}

Run 'consul-xds <command> --help' for the options of a command; 'consul-xds --version' prints the version.
`;

/** The version in package.json (two folders above dist/src/cli.js). */
function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`consul-xds ${version()}\n`);
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    const near = closest(name, Object.keys(COMMANDS));
    process.stderr.write(`consul-xds: unknown command '${name}'${near ? `; did you mean '${near}'?` : ''}\n\n${USAGE}`);
    return 2;
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as Error;
    const code = err instanceof ConsulXdsError ? ` [${err.code}]` : '';
    process.stderr.write(`consul-xds: ${e.message}${code}\n`);
    if (!(err instanceof ConsulXdsError) && process.env.CONSUL_XDS_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exitCode = err instanceof ConsulXdsError && err.code === 'CXDS_USAGE' ? 2 : 1;
  },
);
