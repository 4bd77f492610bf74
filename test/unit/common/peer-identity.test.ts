/**
 * The identity rule (src/common/peer-identity.ts) on real certificates made by openssl
 * (test/support/certs.ts): Node's subjectaltname text is parsed into DNS and URI SANs (quoted
 * values included), and the node-id and group checks allow and refuse as docs/sidecar.md says;
 * reading a node's status (CSDS) follows the same rule, plus whole-group certificates.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { IdentityRule, compileGroupPattern, parseSubjectAltName, type PeerNames } from '../../../src/common/peer-identity.js';
import { makeCa, type SanOptions, type TestCa } from '../../support/certs.js';
import { makeTempDir } from '../../support/tmp.js';

const PATTERN = 'spiffe://example.org/group/{group}/node/{node}';

describe('peer identity', () => {
  let dir: { path: string; remove(): Promise<void> };
  let ca: TestCa;
  let seq = 0;
  const namesOf = async (sans: SanOptions): Promise<PeerNames> => {
    const issued = await ca.issue(`leaf-${seq++}`, sans);
    return parseSubjectAltName(new X509Certificate(await readFile(issued.cert)).subjectAltName);
  };

  before(async () => {
    dir = await makeTempDir('peer-identity');
    ca = await makeCa(dir.path, 'unit');
  });
  after(() => dir?.remove());

  it('reads DNS and URI SANs from a real certificate, skipping IP SANs, and unquotes quoted values', async () => {
    const names = await namesOf({ dns: ['edge-1', 'localhost'], uri: ['spiffe://example.org/group/web/node/edge-1', 'urn:x:a,b'], ip: ['127.0.0.1'] });
    assert.deepEqual(names.dns, ['edge-1', 'localhost']);
    assert.deepEqual(names.uri, ['spiffe://example.org/group/web/node/edge-1', 'urn:x:a,b']);
    assert.deepEqual(parseSubjectAltName(undefined), { dns: [], uri: [] });
  });

  it('node id: a DNS SAN, a URI SAN, or the {node} of a pattern URI; anything else is refused', async () => {
    const rule = new IdentityRule();
    const names = await namesOf({ dns: ['edge-1'], uri: ['spiffe://example.org/edge-2'] });
    assert.equal(rule.check(names, 'edge-1'), undefined);
    assert.equal(rule.check(names, 'spiffe://example.org/edge-2'), undefined);
    const refused = rule.check(names, 'edge-3');
    assert.equal(refused?.reason, 'node_id');
    assert.match(refused?.message ?? '', /node id 'edge-3' is not a DNS or URI SAN .*DNS:edge-1, URI:spiffe:\/\/example.org\/edge-2/);
    assert.equal(rule.check(undefined, 'edge-1')?.reason, 'no_certificate');
    const withPattern = new IdentityRule(PATTERN);
    const spiffe = await namesOf({ uri: ['spiffe://example.org/group/web/node/edge-4'] });
    assert.equal(withPattern.check(spiffe, 'edge-4', 'web'), undefined);
    assert.equal(new IdentityRule().check(spiffe, 'edge-4')?.reason, 'node_id', 'without the pattern {node} means nothing');
  });

  it('group: the pattern URI naming this node must name the group the node is served', async () => {
    const rule = new IdentityRule(PATTERN);
    const names = await namesOf({ uri: ['spiffe://example.org/group/web/node/edge-1', 'spiffe://example.org/group/payments/node/other'] });
    assert.equal(rule.check(names, 'edge-1', 'web'), undefined);
    const refused = rule.check(names, 'edge-1', 'payments');
    assert.equal(refused?.reason, 'group', 'a group named for another node does not count');
    assert.match(refused?.message ?? '', /would be served node group 'payments', but its certificate names group\(s\) 'web'/);
    const dnsOnly = await namesOf({ dns: ['edge-1'] });
    assert.match(rule.check(dnsOnly, 'edge-1', 'web')?.message ?? '', /names no group/);
    // A pattern without {node}: the group URI applies to whatever node the certificate names.
    const groupOnly = new IdentityRule('spiffe://example.org/group/{group}');
    const both = await namesOf({ dns: ['edge-1'], uri: ['spiffe://example.org/group/web'] });
    assert.equal(groupOnly.check(both, 'edge-1', 'web'), undefined);
    assert.equal(groupOnly.check(both, 'edge-1', 'default')?.reason, 'group');
  });

  it('CSDS reads: the nodes the certificate may speak for, or a whole group ({node} `*`, or a pattern without {node})', async () => {
    const rule = new IdentityRule(PATTERN);
    const nodeA = await namesOf({ uri: ['spiffe://example.org/group/web/node/edge-a'] });
    assert.equal(rule.readerOf(nodeA)('edge-a', 'web'), true);
    assert.equal(rule.readerOf(nodeA)('edge-b', 'web'), false, 'another node of the same group');
    assert.equal(rule.readerOf(nodeA)('edge-a', 'payments'), false, 'its own id, served another group');
    const webGroup = await namesOf({ uri: ['spiffe://example.org/group/web/node/*'] });
    assert.equal(rule.readerOf(webGroup)('edge-a', 'web'), true);
    assert.equal(rule.readerOf(webGroup)('edge-b', 'web'), true);
    assert.equal(rule.readerOf(webGroup)('pay-1', 'payments'), false, 'another group');
    assert.equal(rule.check(webGroup, '*', 'web')?.reason, 'node_id', 'a whole-group certificate speaks for no node over xDS');
    assert.equal(rule.readerOf(undefined)('edge-a', 'web'), false, 'no certificate reads nothing');
    const groupOnly = new IdentityRule('spiffe://example.org/group/{group}');
    const both = await namesOf({ dns: ['edge-1'], uri: ['spiffe://example.org/group/web'] });
    assert.equal(groupOnly.readerOf(both)('edge-9', 'web'), true, 'without {node} a group URI names the whole group');
    assert.equal(groupOnly.readerOf(both)('edge-1', 'payments'), false);
    const plain = new IdentityRule();
    const dns = await namesOf({ dns: ['edge-1'], uri: ['spiffe://example.org/group/web/node/*'] });
    assert.equal(plain.readerOf(dns)('edge-1', 'web'), true);
    assert.equal(plain.readerOf(dns)('edge-2', 'web'), false, 'without a pattern no URI names a group');
  });

  it('patterns: {group} is required, each placeholder once, one path segment, the rest literal', () => {
    assert.throws(() => compileGroupPattern('spiffe://x/node/{node}'), /no \{group\} placeholder/);
    assert.throws(() => compileGroupPattern('spiffe://x/{group}/{group}'), /\{group\} twice/);
    const re = compileGroupPattern('spiffe://x.org/g/{group}');
    assert.equal(re.exec('spiffe://x.org/g/web')?.groups?.group, 'web');
    assert.equal(re.exec('spiffe://xXorg/g/web'), null, 'the dot is literal');
    assert.equal(re.exec('spiffe://x.org/g/web/extra'), null, 'one segment');
  });
});
