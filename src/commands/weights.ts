/**
 * `consul-xds weights set <prefix> <cluster>=<weight> ...`: shift the traffic split of a route
 * prefix in the config stored in Consul KV (the seed's "ops edit Consul KV to shift weights").
 * Only the weight values change in the YAML (comments and layout stay); the result is validated
 * as `serve` would, then written with check-and-set: if someone else wrote the key since it was
 * read, nothing is written and the command fails with CXDS_CAS_CONFLICT (read again, retry).
 */
import { ConsulClient } from '../consul/client.js';
import { applyKvWrite, planWeightEdit, previewKvWrite } from '../commands/kv-write.js';
import { singleKvKey } from '../consul/options.js';
import { parseWeightArgs } from '../config/weights-edit.js';
import { ConsulXdsError } from '../errors.js';
import { parseCommandArgs } from './args.js';
import { CONSUL_FLAGS, CONSUL_USAGE, consulOptions } from './consul-flags.js';

const USAGE = `Usage: consul-xds weights set <prefix> <cluster>=<weight> ... [options]

  Sets the weight of each named cluster on a route prefix, e.g.
    consul-xds weights set /api web-api-perl=50 web-api-go=50
  Weights are relative among the clusters sharing the prefix; 0 takes a cluster out of rotation.
  A cluster's weight applies to every prefix its entry lists (the output says when that is more
  than this one).

  --vhost NAME   virtual host to edit (default: 'default', the seed's \`route\` section)
  --dry-run      print the YAML diff and the Envoy resources that would change; write nothing

${CONSUL_USAGE}`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('weights', argv, { ...CONSUL_FLAGS, vhost: { type: 'string' }, 'dry-run': { type: 'boolean' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [action, prefix, ...pairs] = positionals;
  if (action !== 'set') throw new ConsulXdsError('CXDS_USAGE', `weights: expected 'set'${action ? ` (got '${action}')` : ''}\n\n${USAGE}`);
  if (!prefix?.startsWith('/'))
    throw new ConsulXdsError('CXDS_USAGE', `weights set: the first argument is a route prefix starting with '/' (got '${prefix ?? ''}')\n\n${USAGE}`);
  const changes = parseWeightArgs(pairs);

  const opts = consulOptions(values);
  const key = singleKvKey(opts, 'weights set');
  const client = ConsulClient.fromOptions(opts);
  try {
    const { plan, edit } = await planWeightEdit(client, key, prefix, changes, { vhost: values.vhost });
    const summary = edit.changes
      .map((c) => `${c.cluster} ${c.from ?? '(none)'} -> ${c.to}${c.alsoOn.length > 0 ? ` (also applies to ${c.alsoOn.join(', ')})` : ''}`)
      .join(', ');
    if (values['dry-run']) {
      process.stdout.write(previewKvWrite(plan));
      process.stderr.write(`consul kv ${key}: ${prefix}: ${summary}; dry run, nothing written\n`);
      return 0;
    }
    const wrote = await applyKvWrite(client, plan);
    process.stderr.write(
      wrote
        ? `consul kv ${key}: ${prefix}: ${summary} (check-and-set on ModifyIndex ${plan.cas})\n`
        : `consul kv ${key}: ${prefix}: weights already set, nothing written\n`,
    );
    return 0;
  } finally {
    client.close();
  }
}
