/**
 * `consul-xds serve` refuses inconsistent transport-security, health-listener, limit and timeout flags
 * before it starts anything (src/commands/serve.ts), with CXDS_USAGE and the flag named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../../src/commands/serve.js';
import { ConsulXdsError } from '../../../src/errors.js';

const refused = async (argv: string[], message: RegExp) =>
  assert.rejects(run(['--config', '/nonexistent.yaml', ...argv]), (err: unknown) => {
    assert.ok(err instanceof ConsulXdsError, String(err));
    assert.equal(err.code, 'CXDS_USAGE');
    assert.match(err.message, message);
    return true;
  });

test('TLS flags: cert and key go together, per server; a client CA needs both', async () => {
  await refused(['--xds-tls-cert', '/c.crt'], /--xds-tls-cert and --xds-tls-key go together/);
  await refused(['--als-tls-key', '/k.key'], /--als-tls-cert and --als-tls-key go together/);
  await refused(['--xds-tls-client-ca', '/ca.crt'], /--xds-tls-cert and --xds-tls-key go together/);
});

test('the group pattern needs mTLS and a {group} placeholder', async () => {
  await refused(['--xds-identity-group-uri-pattern', 'spiffe://x/{group}'], /needs --xds-tls-client-ca/);
  await refused(
    ['--xds-tls-cert', '/c', '--xds-tls-key', '/k', '--xds-tls-client-ca', '/ca', '--xds-identity-group-uri-pattern', 'spiffe://x/{node}'],
    /--xds-identity-group-uri-pattern: .* has no \{group\} placeholder/,
  );
});

test('--csds-admin-san needs mTLS and a non-empty SAN', async () => {
  await refused(['--csds-admin-san', 'spiffe://x/ops'], /--csds-admin-san needs --xds-tls-client-ca/);
  await refused(['--xds-tls-cert', '/c', '--xds-tls-key', '/k', '--csds-admin-san', 'spiffe://x/ops'], /--csds-admin-san needs --xds-tls-client-ca/);
  await refused(['--xds-tls-cert', '/c', '--xds-tls-key', '/k', '--xds-tls-client-ca', '/ca', '--csds-admin-san', ' '], /--csds-admin-san: empty SAN/);
});

test('limits are integers >= 1; the health host needs a health port', async () => {
  await refused(['--xds-max-resource-names', '0'], /--xds-max-resource-names: expected an integer >= 1, got '0'/);
  await refused(['--xds-max-request-bytes', '1MiB'], /--xds-max-request-bytes: expected an integer >= 1/);
  await refused(['--tls-reload-ms', '-5'], /--tls-reload-ms/);
  await refused(['--health-host', '0.0.0.0'], /--health-host needs --health-port/);
});

test('the make-before-break timeout is an integer >= 0 (0 turns staging off)', async () => {
  await refused(['--removal-timeout-ms=-1'], /--removal-timeout-ms: expected an integer >= 0, got '-1'/);
  await refused(['--removal-timeout-ms', '5s'], /--removal-timeout-ms: expected an integer >= 0/);
});

test('--register and --ramp-driver need Consul mode; --register needs the access-log sink', async () => {
  await refused(['--register'], /--register and --ramp-driver need Consul mode/);
  await refused(['--ramp-driver'], /--register and --ramp-driver need Consul mode/);
  await assert.rejects(run(['--consul-key', 'k', '--register', '--no-als']), /--register needs the access-log sink/);
});
