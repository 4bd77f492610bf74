/**
 * `consul-xds validate FILE` (or `--config FILE`, as `serve` takes it): parse, translate and consistency-check a config exactly as `serve`
 * would, without serving it. Exit 0 and print the snapshot's versions (or the resources with
 * `--dump`); exit 1 with every problem named by path, line and column.
 */
import { checkConfigText } from '../pipeline/build.js';
import { readConfigFile } from '../sources/config-file.js';
import { ConsulXdsError } from '../errors.js';
import { TYPE_ORDER, TYPE_SHORT } from '../xds/resource-types.js';
import { CONFIG_MAX_BYTES_FLAG, CONFIG_MAX_BYTES_USAGE, configMaxBytesOption, parseCommandArgs } from './args.js';

const USAGE = `Usage: consul-xds validate (FILE | --config FILE) [--dump] [--config-max-bytes N]

  --dump                    print the Envoy v3 resources (JSON) the config becomes
${CONFIG_MAX_BYTES_USAGE}`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'validate',
    argv,
    { config: { type: 'string' }, dump: { type: 'boolean' }, ...CONFIG_MAX_BYTES_FLAG },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const files = [...(values.config !== undefined ? [values.config] : []), ...positionals];
  const file = files[0];
  if (!file) throw new ConsulXdsError('CXDS_USAGE', `validate: FILE is required\n\n${USAGE}`);
  if (files.length > 1) throw new ConsulXdsError('CXDS_USAGE', `validate: one config file, got ${files.length} (${files.join(', ')})\n\n${USAGE}`);
  const limits = configMaxBytesOption(values['config-max-bytes']);
  const { snapshot } = checkConfigText(await readConfigFile(file, limits), file, limits);
  if (values.dump) {
    process.stdout.write(`${JSON.stringify(snapshot.toJSON(), null, 2)}\n`);
  } else {
    process.stdout.write(`${file}: valid\n`);
    for (const type of TYPE_ORDER) process.stdout.write(`  ${TYPE_SHORT[type]} ${snapshot.version(type)}: ${snapshot.names(type).join(', ') || '(none)'}\n`);
  }
  return 0;
}
