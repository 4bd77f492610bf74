/**
 * Weight shifts on the YAML text, keeping the operator's file as it is. In: the config text, a
 * route prefix (e.g. `/api`), `cluster=weight` changes and the virtual host (default: the seed's
 * `route`). Out: the new text, where only the weight values changed (a missing `weight:` key is
 * inserted in the entry's own style), plus what changed.
 *
 * Nodes are found with the `yaml` Document API and the new numbers are spliced into the original
 * text at those nodes' source ranges. Re-rendering the Document (setIn + toString) would keep
 * comments but re-layout the file: flow lists get padded (`["/api"]` -> `[ "/api" ]`) and an
 * end-of-line comment after `key:` moves to its own line. Splicing changes nothing else.
 *
 * This checks the edit's shape (virtual host, cluster, prefix); the caller validates the result
 * as a whole (parseConfig + translate) before writing it anywhere.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type YAMLMap } from 'yaml';
import { ConfigError, ConsulXdsError, type ConfigIssue } from '../errors.js';
import { locate } from './locate.js';
import { parseConfig } from './parse.js';
import { formatPath } from './validate.js';
import { DEFAULT_VHOST } from './views.js';
import { UINT32_MAX } from './schema.js';

export interface WeightChange {
  readonly cluster: string;
  readonly weight: number;
}

export interface AppliedWeight {
  readonly cluster: string;
  /** Config path of the weight, e.g. `route.cluster.web-api-go.weight`. */
  readonly path: string;
  /** The weight before the edit; undefined when the key was absent. */
  readonly from?: number;
  readonly to: number;
  /** Other prefixes this cluster entry also routes: its weight applies there too. */
  readonly alsoOn: readonly string[];
}

export interface WeightEdit {
  readonly text: string;
  readonly changes: readonly AppliedWeight[];
}

/** `web-api-go=25` -> {cluster, weight}; names the argument when it is malformed. */
export function parseWeightArgs(args: readonly string[]): WeightChange[] {
  if (args.length === 0) throw new ConsulXdsError('CXDS_USAGE', 'weights set: give at least one <cluster>=<weight>');
  const seen = new Set<string>();
  return args.map((arg) => {
    const m = /^([^=\s]+)=(\d+)$/.exec(arg);
    const weight = m ? Number(m[2]) : NaN;
    if (!m || !Number.isSafeInteger(weight) || weight > UINT32_MAX) {
      throw new ConsulXdsError('CXDS_USAGE', `weights set: '${arg}' is not <cluster>=<weight> (weight an integer 0-${UINT32_MAX})`);
    }
    const cluster = m[1] as string;
    if (seen.has(cluster)) throw new ConsulXdsError('CXDS_USAGE', `weights set: cluster '${cluster}' given twice`);
    seen.add(cluster);
    return { cluster, weight };
  });
}

interface Splice {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

export function editWeights(text: string, source: string, prefix: string, changes: readonly WeightChange[], opts: { vhost?: string } = {}): WeightEdit {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  // Broken YAML: let the config parser report it exactly as `serve` would.
  if (doc.errors.length > 0) parseConfig(text, source);
  const issue = (path: readonly (string | number)[], message: string): ConfigIssue => {
    const pos = locate(doc, lines, path);
    return { path: formatPath(path), message, ...(pos ? { line: pos.line, col: pos.col } : {}) };
  };

  const vhostName = opts.vhost ?? DEFAULT_VHOST;
  const vhostPath = vhostName === DEFAULT_VHOST && doc.hasIn(['route']) ? ['route'] : ['virtual-hosts', vhostName];
  const clustersNode = doc.getIn([...vhostPath, 'cluster'], true);
  if (!isMap(clustersNode)) {
    throw new ConfigError(source, [
      issue(vhostPath, `no virtual host '${vhostName}' with a cluster section (the seed's \`route\` is '${DEFAULT_VHOST}'; others are under virtual-hosts)`),
    ]);
  }

  const issues: ConfigIssue[] = [];
  const splices: Splice[] = [];
  const applied: AppliedWeight[] = [];
  for (const change of changes) {
    const entryPath = [...vhostPath, 'cluster', change.cluster];
    const entry = clustersNode.get(change.cluster, true);
    if (!isMap(entry)) {
      const known = clustersNode.items.map((p) => (isScalar(p.key) ? String(p.key.value) : '?'));
      issues.push(issue(entryPath.slice(0, -1), `no cluster '${change.cluster}' here (routed clusters: ${known.join(', ') || 'none'})`));
      continue;
    }
    const prefixes = prefixesOf(entry);
    if (!prefixes.includes(prefix)) {
      issues.push(
        issue(
          [...entryPath, 'prefix'],
          `cluster '${change.cluster}' does not route prefix "${prefix}" (it routes ${prefixes.map((p) => `"${p}"`).join(', ') || 'nothing'})`,
        ),
      );
      continue;
    }
    const weightNode = entry.get('weight', true);
    let from: number | undefined;
    if (isScalar(weightNode) && weightNode.range) {
      from = typeof weightNode.value === 'number' ? weightNode.value : undefined;
      if (from !== change.weight) splices.push({ start: weightNode.range[0], end: weightNode.range[1], text: String(change.weight) });
    } else {
      splices.push(insertWeight(text, entry, change.weight));
    }
    applied.push(
      Object.freeze({
        cluster: change.cluster,
        path: formatPath([...entryPath, 'weight']),
        from,
        to: change.weight,
        alsoOn: Object.freeze(prefixes.filter((p) => p !== prefix)),
      }),
    );
  }
  if (issues.length > 0) throw new ConfigError(source, issues);

  let out = text;
  for (const s of [...splices].sort((a, b) => b.start - a.start)) out = out.slice(0, s.start) + s.text + out.slice(s.end);
  return Object.freeze({ text: out, changes: Object.freeze(applied) });
}

function prefixesOf(entry: YAMLMap): string[] {
  const node = entry.get('prefix', true);
  if (!isSeq(node)) return [];
  return node.items.flatMap((item) => (isScalar(item) && typeof item.value === 'string' ? [item.value] : []));
}

/** A `weight` key where the entry has none: before its first key, in the entry's style. */
function insertWeight(text: string, entry: YAMLMap, weight: number): Splice {
  const first = entry.items[0]?.key;
  const at = isScalar(first) && first.range ? first.range[0] : undefined;
  if (at === undefined) throw new ConsulXdsError('CXDS_CONFIG_INVALID', 'weights set: cannot place a weight in an empty route entry');
  if (entry.flow) return { start: at, end: at, text: `weight: ${weight}, ` };
  const lineStart = text.lastIndexOf('\n', at - 1) + 1;
  const indent = text.slice(lineStart, at);
  return { start: at, end: at, text: `weight: ${weight}\n${/^\s*$/.test(indent) ? indent : ' '.repeat(indent.length)}` };
}
