/**
 * `consul-xds kv get|put|validate`: the YAML config stored in Consul KV. `put` validates the new
 * text exactly as `serve` would and writes it with check-and-set, so a concurrent edit is never
 * overwritten (exit 1 with CXDS_CAS_CONFLICT instead). `--dry-run` prints the YAML diff and the
 * Envoy resources that would change, and writes nothing.
 */
import { ConsulClient } from '../consul/client.js';
import { applyKvWrite, checkConfigText, planKvWrite, previewKvWrite } from '../commands/kv-write.js';
import { singleKvKey } from '../consul/options.js';
import { checkConfigSize, DEFAULT_CONFIG_MAX_BYTES, type ParseOptions } from '../config/parse.js';
import { readConfigFile } from '../sources/config-file.js';
import { ConsulError, ConsulXdsError } from '../errors.js';
import { TYPE_ORDER, TYPE_SHORT } from '../xds/resource-types.js';
import { CONFIG_MAX_BYTES_FLAG, CONFIG_MAX_BYTES_USAGE, configMaxBytesOption, parseCommandArgs } from './args.js';
import { CONSUL_FLAGS, CONSUL_USAGE, consulOptions } from './consul-flags.js';

const USAGE = `Usage: consul-xds kv <get|put|validate> [options]

  get                  print the stored config (its ModifyIndex goes to stderr)
  put --file FILE      validate FILE ('-' = stdin), then write it with check-and-set
    --cas N            write only if the key's ModifyIndex is still N (default: the index read
                       just before; 0 = only if the key does not exist yet)
    --dry-run          print the YAML diff and the Envoy resources that would change; write nothing
  validate             check the stored config exactly as serve would
${CONFIG_MAX_BYTES_USAGE}
${CONSUL_USAGE}`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    'kv',
    argv,
    { ...CONSUL_FLAGS, ...CONFIG_MAX_BYTES_FLAG, file: { type: 'string' }, cas: { type: 'string' }, 'dry-run': { type: 'boolean' } },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [action, ...extra] = positionals;
  if (!action || extra.length > 0 || !['get', 'put', 'validate'].includes(action)) {
    throw new ConsulXdsError('CXDS_USAGE', `kv: expected one of get, put, validate${action ? ` (got '${[action, ...extra].join(' ')}')` : ''}\n\n${USAGE}`);
  }
  const limits = configMaxBytesOption(values['config-max-bytes']);
  const opts = consulOptions(values);
  const key = singleKvKey(opts, `kv ${action}`);
  const client = ConsulClient.fromOptions(opts);
  try {
    switch (action) {
      case 'get': {
        const entry = await client.kvGet(key);
        if (!entry) throw new ConsulError(`consul kv ${key}: key not found`);
        process.stdout.write(entry.value.endsWith('\n') || entry.value === '' ? entry.value : `${entry.value}\n`);
        process.stderr.write(`consul kv ${key}: ModifyIndex ${entry.modifyIndex}\n`);
        return 0;
      }
      case 'validate': {
        const entry = await client.kvGet(key);
        if (!entry) throw new ConsulError(`consul kv ${key}: key not found`);
        const { snapshot } = checkConfigText(entry.value, `consul kv ${key}`, limits);
        process.stdout.write(`consul kv ${key} (ModifyIndex ${entry.modifyIndex}): valid\n`);
        for (const type of TYPE_ORDER)
          process.stdout.write(`  ${TYPE_SHORT[type]} ${snapshot.version(type)}: ${snapshot.names(type).join(', ') || '(none)'}\n`);
        return 0;
      }
      default: {
        if (!values.file) throw new ConsulXdsError('CXDS_USAGE', `kv put: --file FILE is required ('-' reads stdin)\n\n${USAGE}`);
        const text = values.file === '-' ? await readStdin(limits) : await readConfigFile(values.file, limits);
        const cas = values.cas === undefined ? undefined : Number(values.cas);
        if (cas !== undefined && !(Number.isSafeInteger(cas) && cas >= 0))
          throw new ConsulXdsError('CXDS_USAGE', `kv put: --cas: expected a ModifyIndex (integer >= 0), got '${values.cas}'`);
        const plan = await planKvWrite(client, key, text, { source: values.file === '-' ? '<stdin>' : values.file, cas, ...limits });
        if (values['dry-run']) {
          process.stdout.write(previewKvWrite(plan));
          process.stderr.write(`consul kv ${key}: dry run, nothing written\n`);
          return 0;
        }
        const wrote = await applyKvWrite(client, plan);
        process.stderr.write(
          wrote ? `consul kv ${key}: written (check-and-set on ModifyIndex ${plan.cas})\n` : `consul kv ${key}: unchanged, nothing written\n`,
        );
        return 0;
      }
    }
  } finally {
    client.close();
  }
}

/** stdin, keeping no more than the cap in memory: a larger input is counted to its end, then refused with its size. */
async function readStdin(limits: ParseOptions): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of process.stdin) {
    bytes += (chunk as Buffer).length;
    if (bytes <= (limits.maxBytes ?? DEFAULT_CONFIG_MAX_BYTES)) chunks.push(chunk as Buffer);
  }
  checkConfigSize('<stdin>', bytes, limits.maxBytes);
  return Buffer.concat(chunks).toString('utf8');
}
