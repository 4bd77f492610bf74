/**
 * `npm run example -- <name> [--data-plane envoy|ts-proxy|none] [--free-ports] [--exit]`: runs one
 * of the examples under examples/ on this machine, without Docker: its demo upstreams, Consul
 * where the example needs it, `consul-xds serve` and a data plane (Envoy from the cached wheel by
 * default, or `consul-xds proxy`). It then walks through the example: each step prints the
 * command to try, what to expect and what it got. Everything keeps running until Ctrl-C, unless
 * `--exit` (the tests) ends it after the walkthrough. `npm start` is `quickstart --data-plane none`.
 */
import { parseArgs } from 'node:util';
import { Stack, type DataPlaneKind } from './example/stack.js';
import { EXAMPLES } from './example/examples.js';

const USAGE = `Usage: npm run example -- <name> [--data-plane envoy|ts-proxy|none] [--free-ports] [--exit]

Examples:
${Object.entries(EXAMPLES)
  .map(([name, e]) => `  ${name.padEnd(11)} ${e.title}`)
  .join('\n')}

  --data-plane K   envoy (default: scripts/install-envoy.sh, or $ENVOY_BIN), ts-proxy (consul-xds proxy),
                   none (start it yourself; the printed bootstrap command shows how)
  --free-ports     use free loopback ports instead of the fixed ones the READMEs show
  --exit           stop everything after the walkthrough (exit 1 if a step failed to run)
`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { 'data-plane': { type: 'string' }, 'free-ports': { type: 'boolean' }, exit: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  const name = positionals[0];
  const example = name === undefined ? undefined : EXAMPLES[name];
  if (values.help || !example) {
    (values.help ? process.stdout : process.stderr).write(`${name && !example ? `example: no example named '${name}'\n\n` : ''}${USAGE}`);
    return values.help ? 0 : 2;
  }
  const dataPlane = (values['data-plane'] ?? example.dataPlane ?? 'envoy') as DataPlaneKind;
  if (!['envoy', 'ts-proxy', 'none'].includes(dataPlane)) {
    process.stderr.write(`example: --data-plane: expected envoy, ts-proxy or none, got '${dataPlane}'\n`);
    return 2;
  }
  const print = (line: string) => process.stdout.write(`${line}\n`);
  const stack = await Stack.create({ example: name as string, dataPlane, freePorts: values['free-ports'] ?? false, print });
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await stack.close();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  try {
    print(`${name}: ${example.title}  (${example.readme}; scratch folder ${stack.dir})`);
    await example.run(stack);
  } catch (err) {
    process.stderr.write(`example ${name}: ${(err as Error).message}\n`);
    await stop(1);
    return 1;
  }
  if (values.exit) {
    await stop(0);
    return 0;
  }
  print('\nEverything is still running: try the commands above. Ctrl-C stops it all.');
  return new Promise<number>(() => undefined);
}

process.exitCode = await main();
