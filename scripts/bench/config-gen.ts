/**
 * Configs for the fan-out benchmark, in our YAML format (seed 001's shape, file mode).
 *
 * In: how many clusters, a change number and kind. Out: YAML text. In an `edit`, change k differs from change k-1 in
 * every Cluster (the health check's healthy threshold and interval) and in the RouteConfiguration
 * (the weights of every pair of clusters sharing a prefix), so one change pushes 100 new Cluster
 * resources plus one RouteConfiguration, and the ClusterLoadAssignments (static endpoints) and the
 * Listener stay the same: a realistic "operator edits the config" change.
 *
 * Endpoint addresses are data for the clients; nothing connects to them. They are loopback
 * addresses all the same.
 */

function pad(i: number): string {
  return String(i).padStart(3, '0');
}

/** Cluster i's share of its prefix in change k, 1..99; the pair partner gets the rest. */
function weightOf(i: number, change: number): number {
  return 1 + ((i * 37 + change * 11) % 99);
}

/**
 * What change k alters: `edit` (the operator edits the config, as above) or `flip` (one endpoint's
 * health flips, as Consul health reports it: the churn workload). In a flip, change k toggles the
 * health of endpoint (k mod 3) of cluster (k * 37 mod clusters) and nothing else, so exactly one
 * ClusterLoadAssignment differs from change k-1; an endpoint flipped an odd number of times by
 * change k is unhealthy.
 */
export type ChangeKind = 'edit' | 'flip';

export const ENDPOINTS_PER_CLUSTER = 3;

/**
 * The config size cap the benchmark parses with, as if `serve` ran with `--config-max-bytes` set
 * to it: 1,000 clusters in this format take about 580 KB, over the default 512 KB.
 */
export const BENCH_CONFIG_MAX_BYTES = 8 * 1024 * 1024;

/** Endpoints unhealthy after `change` flips: keys "cluster index/endpoint index". */
function unhealthyAfter(clusters: number, change: number): ReadonlySet<string> {
  const out = new Set<string>();
  for (let k = 1; k <= change; k++) {
    const key = `${(k * 37) % clusters}/${k % ENDPOINTS_PER_CLUSTER}`;
    if (!out.delete(key)) out.add(key);
  }
  return out;
}

export function benchConfigYaml(clusters: number, change: number, kind: ChangeKind = 'edit'): string {
  if (clusters < 1) throw new Error('--clusters must be at least 1');
  const unhealthy = kind === 'flip' ? unhealthyAfter(clusters, change) : new Set<string>();
  const edit = kind === 'edit' ? change : 0;
  const names = Array.from({ length: clusters }, (_, i) => `svc-${pad(i)}`);
  const lines: string[] = [
    `# consul-xds fan-out benchmark config: ${clusters} clusters, ${kind} change ${change}`,
    'listener:',
    '  bench:',
    '    address: "127.0.0.1"',
    '    port: 10000',
    'route:',
    '  domain: ["*"]',
    '  cluster:',
  ];
  names.forEach((name, i) => {
    const pair = Math.floor(i / 2);
    const partnered = i % 2 === 0 ? i + 1 < clusters : true;
    const first = weightOf(i - (i % 2), edit);
    const weight = !partnered ? 100 : i % 2 === 0 ? first : 100 - first;
    lines.push(`    ${name}:`, `      prefix: ["/svc-${pad(pair)}"]`, `      weight: ${weight}`);
  });
  lines.push('cluster:', '  loadbalancer:');
  for (const name of names) {
    lines.push(
      `    ${name}:`,
      '      lb-policy: "round-robin"',
      '      discovery: "eds"',
      '      health-check:',
      '        type: "http"',
      '        value: "/health_check"',
      '        expected: ["200-399"]',
      '        timeout: 1',
      `        interval: ${1 + (edit % 5)}`,
      `        healthy: ${1 + (edit % 7)}`,
      '        unhealthy: 3',
    );
  }
  lines.push('endpoint:', '  eds:');
  names.forEach((name, i) => {
    lines.push(`    ${name}:`, '      port: 8080', '      balancing-policy: "locality"', '      static:');
    for (let j = 0; j < ENDPOINTS_PER_CLUSTER; j++) {
      const health = unhealthy.has(`${i}/${j}`) ? ', health: "unhealthy"' : '';
      lines.push(`        - { address: "127.0.${1 + (i >> 8)}.${i & 0xff || 1}", port: ${8080 + j}, zone: "zone-${String.fromCharCode(97 + j)}"${health} }`);
    }
  });
  return `${lines.join('\n')}\n`;
}
