/**
 * `consul-xds validate FILE`: parse, translate and consistency-check a config exactly as `serve`
 * would, without serving it. Exit 0 and print the snapshot's versions (or the resources with
 * `--dump`); exit 1 with every problem named by path, line and column.
 */
import { readFile } from 'node:fs/promises';
import { parseConfig } from '../config/parse.js';
import { staticEndpoints } from '../config/static-endpoints.js';
import { translate } from '../translate/index.js';
import { buildSnapshot } from '../cache/snapshot.js';
import { ConsulXdsError } from '../errors.js';
import { TYPE_ORDER, TYPE_SHORT } from '../xds/type-urls.js';
import { parseCommandArgs } from './args.js';

const USAGE = `Usage: consul-xds validate FILE [--dump]

  --dump   print the Envoy v3 resources (JSON) the config becomes
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('validate', argv, { dump: { type: 'boolean' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const file = positionals[0];
  if (!file) throw new ConsulXdsError('CXDS_USAGE', `validate: FILE is required\n\n${USAGE}`);
  const text = await readFile(file, 'utf8').catch((err: Error) => {
    throw new ConsulXdsError('CXDS_CONFIG_FILE', `${file}: cannot read config file: ${err.message}`);
  });
  const config = parseConfig(text, file);
  const snapshot = buildSnapshot(translate(config, staticEndpoints(config)));
  if (values.dump) {
    process.stdout.write(`${JSON.stringify(snapshot.toJSON(), null, 2)}\n`);
  } else {
    process.stdout.write(`${file}: valid\n`);
    for (const type of TYPE_ORDER) process.stdout.write(`  ${TYPE_SHORT[type]} ${snapshot.version(type)}: ${snapshot.names(type).join(', ') || '(none)'}\n`);
  }
  return 0;
}
