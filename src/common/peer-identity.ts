/**
 * Who a TLS client is, and whether it may speak for a node: the identity rule of the xDS server
 * and the ALS sink when they require client certificates (docs/sidecar.md, "Transport security").
 * In: the peer certificate grpc-js verified (`call.getAuthContext()`), the node id the client
 * claims and, for xDS, the node group the server would serve it. Out: undefined (allowed) or a
 * Denial with a metric label and a message naming the node, the SANs and the rule.
 *
 * The rule:
 *  - the node id must equal one of the certificate's DNS SANs or URI SANs, or the `{node}` part of
 *    a URI SAN that matches the group pattern;
 *  - with a group pattern (e.g. `spiffe://example.org/group/{group}/node/{node}`), a URI SAN that
 *    matches it (and whose `{node}`, when the pattern has one, is the node id) must name the group
 *    the server serves the node; gRPC clients' `<group>/grpc` snapshot counts as `<group>`.
 * Only the certificate speaks: nothing the client sends (node.cluster, metadata) can widen it.
 *
 * Reading a node's status (CSDS, src/server/csds.ts) follows the same rule: a certificate may read
 * the nodes it may speak for and, with a group pattern, every node of a group it names as a whole:
 * a URI SAN matching the pattern whose `{node}` is `*` (which speaks for no node over xDS), or
 * any matching one when the pattern has no `{node}`.
 */
import type { PeerCertificate } from 'node:tls';

/** What a certificate says about its holder. */
export interface PeerNames {
  readonly dns: readonly string[];
  readonly uri: readonly string[];
}

export type DenyReason = 'no_certificate' | 'node_id' | 'group';
export const DENY_REASONS: readonly DenyReason[] = ['no_certificate', 'node_id', 'group'];

export interface Denial {
  readonly reason: DenyReason;
  readonly message: string;
}

/** One `Type:value` entry of Node's subjectaltname string; a value with `,` or `"` is JSON-quoted. */
const SAN_ENTRY = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy;

/** Parses Node's `subjectaltname` (`DNS:a, URI:spiffe://x, IP Address:127.0.0.1`). */
export function parseSubjectAltName(text: string | undefined): PeerNames {
  const dns: string[] = [];
  const uri: string[] = [];
  if (!text) return { dns, uri };
  SAN_ENTRY.lastIndex = 0;
  for (let m = SAN_ENTRY.exec(text); m !== null && m[0] !== ''; m = SAN_ENTRY.exec(text)) {
    const raw = m[2] ?? '';
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    if (m[1] === 'DNS') dns.push(value);
    else if (m[1] === 'URI') uri.push(value);
  }
  return { dns, uri };
}

/** The names of a verified peer certificate, or undefined when there is none (plaintext, or TLS without a client cert). */
export function peerNames(auth: { readonly sslPeerCertificate?: PeerCertificate } | null | undefined): PeerNames | undefined {
  const cert = auth?.sslPeerCertificate;
  return cert ? parseSubjectAltName(cert.subjectaltname) : undefined;
}

/** `{group}` (required) and `{node}` (optional) placeholders, each one path segment. */
export function compileGroupPattern(pattern: string): RegExp {
  if (!pattern.includes('{group}')) throw new Error(`identity group pattern '${pattern}' has no {group} placeholder`);
  const parts = pattern.split(/(\{group\}|\{node\})/);
  const seen = new Set<string>();
  const source = parts
    .map((p) => {
      if (p !== '{group}' && p !== '{node}') return p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      if (seen.has(p)) throw new Error(`identity group pattern '${pattern}' has ${p} twice`);
      seen.add(p);
      return `(?<${p.slice(1, -1)}>[^/]+)`;
    })
    .join('');
  return new RegExp(`^${source}$`);
}

/** The `{node}` of a URI SAN that names every node of its group (for reading status, not for speaking as a node). */
export const WHOLE_GROUP = '*';

export class IdentityRule {
  readonly #group: RegExp | undefined;

  /** `groupPattern`: see the file header; without it only the node id is checked. */
  constructor(groupPattern?: string) {
    this.#group = groupPattern === undefined ? undefined : compileGroupPattern(groupPattern);
  }

  get checksGroup(): boolean {
    return this.#group !== undefined;
  }

  /** Whether `peer` may speak for node `nodeId`; `group` (xDS only) is what the server would serve it. */
  check(peer: PeerNames | undefined, nodeId: string, group?: string): Denial | undefined {
    if (peer === undefined) return { reason: 'no_certificate', message: `node '${nodeId}': no verified client certificate` };
    const fromPattern = this.#patternMatches(peer);
    if (!namesNode(peer, fromPattern, nodeId)) {
      return { reason: 'node_id', message: `node id '${nodeId}' is not a DNS or URI SAN of the client certificate (${describe(peer)})` };
    }
    if (this.#group === undefined || group === undefined) return undefined;
    const groups = groupsFor(fromPattern, nodeId);
    if (groups.includes(group)) return undefined;
    return {
      reason: 'group',
      message: `node '${nodeId}' would be served node group '${group}', but its certificate names ${groups.length > 0 ? `group(s) ${groups.map((g) => `'${g}'`).join(', ')}` : 'no group'} (${describe(peer)})`,
    };
  }

  /**
   * Which nodes `peer` may read the status of (CSDS), by node id and the group each is served:
   * those it may speak for (check's rule), and every node of a group it names as a whole. The
   * certificate is read once here, not once per node.
   */
  readerOf(peer: PeerNames | undefined): (nodeId: string, group: string) => boolean {
    if (peer === undefined) return () => false;
    const fromPattern = this.#patternMatches(peer);
    const wholeGroups = new Set(fromPattern.filter((m) => m.node === undefined || m.node === WHOLE_GROUP).map((m) => m.group));
    const checksGroup = this.#group !== undefined;
    return (nodeId, group) =>
      wholeGroups.has(group) || (namesNode(peer, fromPattern, nodeId) && (!checksGroup || groupsFor(fromPattern, nodeId).includes(group)));
  }

  #patternMatches(peer: PeerNames): PatternMatch[] {
    const re = this.#group;
    if (re === undefined) return [];
    const out: PatternMatch[] = [];
    for (const u of peer.uri) {
      const g = re.exec(u)?.groups;
      if (g?.group !== undefined) out.push({ group: g.group, node: g.node });
    }
    return out;
  }
}

type PatternMatch = { readonly group: string; readonly node: string | undefined };

/** The node id is a DNS or URI SAN, or the `{node}` of a pattern URI (a whole-group `*` reads status; it never speaks for a node). */
function namesNode(peer: PeerNames, fromPattern: readonly PatternMatch[], nodeId: string): boolean {
  return peer.dns.includes(nodeId) || peer.uri.includes(nodeId) || fromPattern.some((m) => m.node === nodeId && m.node !== WHOLE_GROUP);
}

/** The groups the pattern URIs name for `nodeId`: those naming it, and those without `{node}`. */
function groupsFor(fromPattern: readonly PatternMatch[], nodeId: string): string[] {
  return fromPattern.filter((m) => m.node === undefined || m.node === nodeId).map((m) => m.group);
}

/** SANs for a log line or an error message (bounded: a certificate can list many). */
export function describe(peer: PeerNames): string {
  const all = [...peer.dns.map((d) => `DNS:${d}`), ...peer.uri.map((u) => `URI:${u}`)];
  if (all.length === 0) return 'no DNS or URI SANs';
  return all.length > 8 ? `${all.slice(0, 8).join(', ')}, ... (${all.length} SANs)` : all.join(', ');
}
