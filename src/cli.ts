#!/usr/bin/env node
/**
 * The `consul-xds` command. In: argv. Out: an exit code. Each subcommand lives in
 * src/commands/<name>.ts and exports `run(argv)`; this file only dispatches and prints usage.
 */
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
};

export const USAGE = `consul-xds - an Envoy xDS control plane fed by Consul

Usage: consul-xds <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Run 'consul-xds <command> --help' for the options of a command.
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`consul-xds: unknown command '${name}'\n\n${USAGE}`);
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
    process.exitCode = 1;
  },
);
