/**
 * Safe writes of the YAML config to Consul KV, shared by `kv put` and `weights set`. In: a Consul
 * client, a key and the new text (or a weight edit of the stored text). Out: a write plan (the
 * validated new config, the stored value it replaces and the ModifyIndex it was read at), a
 * preview of what would change (YAML diff and Envoy resource diff), and the check-and-set write.
 *
 * Every write is validated first exactly as `serve` would build it (parseConfig, translate, the
 * snapshot's encoding and consistency check), and goes out with `?cas=<ModifyIndex read>` (0 when
 * the key did not exist): if anyone wrote the key in between, Consul refuses and we throw
 * CasConflictError instead of silently overwriting their edit.
 */
import type { ParseOptions } from '../config/parse.js';
import { editWeights, type WeightChange, type WeightEdit } from '../config/weights-edit.js';
import type { ConsulClient, KvEntry } from '../consul/client.js';
import { CasConflictError, ConsulError } from '../errors.js';
import { checkConfigText, type CheckedConfig } from '../pipeline/build.js';
import { RESOURCE_TYPES } from '../xds/resource-types.js';
import type { ProtoObject, XdsResourceSet } from '../xds/resources.js';
import { unifiedDiff } from './text-diff.js';

export { checkConfigText, type CheckedConfig };

export interface KvWritePlan {
  readonly key: string;
  /** The stored value the plan was made against; undefined when the key does not exist. */
  readonly current?: KvEntry;
  readonly next: CheckedConfig;
  /** The ModifyIndex the write is conditional on (0: only if the key still does not exist). */
  readonly cas: number;
}

/** Reads the key and validates `text` as its replacement. `cas` pins the write to an index the caller read earlier. */
export async function planKvWrite(
  client: ConsulClient,
  key: string,
  text: string,
  opts: { source?: string; cas?: number } & ParseOptions = {},
): Promise<KvWritePlan> {
  const current = await client.kvGet(key);
  const next = checkConfigText(text, opts.source ?? `consul kv ${key} (new value)`, opts);
  return Object.freeze({ key, current, next, cas: opts.cas ?? current?.modifyIndex ?? 0 });
}

/** Reads the key, applies the weight changes to its text (comments and layout kept) and validates the result. */
export async function planWeightEdit(
  client: ConsulClient,
  key: string,
  prefix: string,
  changes: readonly WeightChange[],
  opts: { vhost?: string } = {},
): Promise<{ plan: KvWritePlan; edit: WeightEdit }> {
  const current = await client.kvGet(key);
  if (!current) throw new ConsulError(`consul kv ${key}: key not found (put a config first: consul-xds kv put --consul-key ${key} --file FILE)`);
  const source = `consul kv ${key}`;
  const edit = editWeights(current.value, source, prefix, changes, opts);
  const next = checkConfigText(edit.text, `${source} (after weights set ${prefix})`);
  return { plan: Object.freeze({ key, current, next, cas: current.modifyIndex }), edit };
}

/** The check-and-set write. Returns false when there was nothing to write (same text). */
export async function applyKvWrite(client: ConsulClient, plan: KvWritePlan): Promise<boolean> {
  if (plan.current?.value === plan.next.text && plan.current.modifyIndex === plan.cas) return false;
  const ok = await client.kvPut(plan.key, plan.next.text, { cas: plan.cas });
  if (!ok) throw new CasConflictError(`consul kv ${plan.key}`);
  return true;
}

/** The `--dry-run` preview: the YAML diff, then the Envoy resources that would be added, removed or changed. */
export function previewKvWrite(plan: KvWritePlan): string {
  const before = plan.current?.value ?? '';
  const yaml = unifiedDiff(before, plan.next.text, {
    from: `consul kv ${plan.key} (ModifyIndex ${plan.current?.modifyIndex ?? 'none: new key'})`,
    to: `consul kv ${plan.key} (proposed)`,
  });
  let resources: string;
  if (!plan.current) {
    resources = summarize(plan.next.resources);
  } else {
    let old: XdsResourceSet | undefined;
    try {
      old = checkConfigText(before, `consul kv ${plan.key}`).resources;
    } catch (err) {
      resources = `(the stored config is invalid, so every resource is new: ${(err as Error).message})\n${summarize(plan.next.resources)}`;
    }
    resources ??= old ? resourceDiff(old, plan.next.resources) : '';
  }
  return ['# Config (YAML)', yaml || '(no change)\n', '# Envoy resources', resources || '(no change)\n'].join('\n');
}

function byName(list: readonly ProtoObject[], field: string): Map<string, ProtoObject> {
  return new Map(list.map((r) => [String(r[field]), r]));
}

/** Per resource: `+ TYPE name` (added), `- TYPE name` (removed), `~ TYPE name` and a JSON diff (changed). */
export function resourceDiff(before: XdsResourceSet, after: XdsResourceSet): string {
  const out: string[] = [];
  for (const { setKey, short, nameField } of RESOURCE_TYPES) {
    const a = byName(before[setKey], nameField);
    const b = byName(after[setKey], nameField);
    for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
      const x = a.get(name);
      const y = b.get(name);
      if (!x) out.push(`+ ${short} ${name}`);
      else if (!y) out.push(`- ${short} ${name}`);
      else {
        const d = unifiedDiff(JSON.stringify(x, null, 2), JSON.stringify(y, null, 2), { from: `${short} ${name} (now)`, to: `${short} ${name} (proposed)` }, 2);
        if (d) out.push(`~ ${short} ${name}`, d.trimEnd());
      }
    }
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}

function summarize(set: XdsResourceSet): string {
  return `${RESOURCE_TYPES.flatMap(({ setKey, short, nameField }) => set[setKey].map((r) => `+ ${short} ${String(r[nameField])}`)).join('\n')}\n`;
}
