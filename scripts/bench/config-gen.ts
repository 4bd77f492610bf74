/**
 * Configs for the fan-out benchmark, in our YAML format (seed 001's shape, file mode).
 *
 * In: how many clusters, and a change number. Out: YAML text. Change k differs from change k-1 in
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

export function benchConfigYaml(clusters: number, change: number): string {
  if (clusters < 1) throw new Error('--clusters must be at least 1');
  const names = Array.from({ length: clusters }, (_, i) => `svc-${pad(i)}`);
  const lines: string[] = [
    `# consul-xds fan-out benchmark config: ${clusters} clusters, change ${change}`,
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
    const first = weightOf(i - (i % 2), change);
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
      `        interval: ${1 + (change % 5)}`,
      `        healthy: ${1 + (change % 7)}`,
      '        unhealthy: 3',
    );
  }
  lines.push('endpoint:', '  eds:');
  names.forEach((name, i) => {
    lines.push(`    ${name}:`, '      port: 8080', '      balancing-policy: "locality"', '      static:');
    for (let j = 0; j < 3; j++) {
      lines.push(`        - { address: "127.0.${1 + (i >> 8)}.${i & 0xff || 1}", port: ${8080 + j}, zone: "zone-${String.fromCharCode(97 + j)}" }`);
    }
  });
  return `${lines.join('\n')}\n`;
}
