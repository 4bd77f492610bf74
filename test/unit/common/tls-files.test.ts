/**
 * Rotating TLS files (src/common/tls-files.ts) with real certificates and a real grpc-js server:
 * a bad set at start is an error naming the file; a new good set reaches new connections once
 * the files stand still; a bad new set (key of another certificate, garbage) keeps the last good
 * certificate serving and is reported in status until the files are put right.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Server } from '@grpc/grpc-js';
import { TlsFiles } from '../../../src/common/tls-files.js';
import { silentLogger } from '../../../src/log.js';
import { makeCa, servedFingerprint, type IssuedCert, type TestCa } from '../../support/certs.js';
import { makeTempDir } from '../../support/tmp.js';

describe('TLS files', () => {
  let dir: { path: string; remove(): Promise<void> };
  let ca: TestCa;
  let first: IssuedCert;
  let files: { cert: string; key: string };
  const install = async (c: { cert: string; key: string }) => {
    await copyFile(c.key, files.key);
    await copyFile(c.cert, files.cert);
  };

  before(async () => {
    dir = await makeTempDir('tls-files');
    ca = await makeCa(dir.path, 'unit');
    first = await ca.issue('server-1', { dns: ['localhost'], ip: ['127.0.0.1'] });
    files = { cert: join(dir.path, 'live.crt'), key: join(dir.path, 'live.key') };
    await install(first);
  });
  after(() => dir?.remove());

  it('refuses a bad set at start, naming the file', async () => {
    const other = await ca.issue('other', { dns: ['localhost'] });
    await assert.rejects(TlsFiles.open({ cert: files.cert, key: other.key }, { logger: silentLogger, what: 'xds' }), (err: Error) => {
      assert.match(err.message, /xds TLS: key .*other\.key does not belong to certificate .*live\.crt/);
      return true;
    });
    await assert.rejects(
      TlsFiles.open({ cert: join(dir.path, 'missing.crt'), key: files.key }, { logger: silentLogger, what: 'xds' }),
      /certificate .*missing\.crt: ENOENT/,
    );
    const garbage = join(dir.path, 'garbage.pem');
    await writeFile(garbage, 'not a certificate\n');
    await assert.rejects(
      TlsFiles.open({ cert: files.cert, key: garbage }, { logger: silentLogger, what: 'als' }),
      /als TLS: key .*garbage\.pem: not a PEM private key/,
    );
  });

  it('serves a rotated certificate to new connections; a bad new set keeps the old one and is reported', async (t) => {
    const tls = await TlsFiles.open(files, { logger: silentLogger, what: 'xds', pollMs: 60_000 });
    const server = new Server();
    t.after(() => {
      tls.close();
      server.forceShutdown();
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', tls.credentials, (err, p) => (err ? reject(err) : resolve(p))));
    assert.equal(await servedFingerprint(port, ca.cert), first.fingerprint256);

    const second = await ca.issue('server-2', { dns: ['localhost'], ip: ['127.0.0.1'] });
    await install(second);
    await tls.poll(); // the change is seen...
    assert.equal(await servedFingerprint(port, ca.cert), first.fingerprint256, 'not applied before the files stood still');
    await tls.poll(); // ...and applied once it stood still
    assert.equal(await servedFingerprint(port, ca.cert), second.fingerprint256);
    assert.equal(tls.status().reloads, 1);
    assert.equal(tls.status().serial, second.serial);

    // A key that belongs to another certificate: refused, reported, the second cert keeps serving.
    const third = await ca.issue('server-3', { dns: ['localhost'] });
    await copyFile(third.key, files.key);
    await tls.poll();
    await tls.poll();
    const st = tls.status();
    assert.equal(st.reloadFailures, 1);
    assert.match(st.lastError?.message ?? '', /key .*live\.key does not belong to certificate .*live\.crt/);
    assert.equal(st.serial, second.serial);
    assert.equal(await servedFingerprint(port, ca.cert), second.fingerprint256);
    await tls.poll();
    assert.equal(tls.status().reloadFailures, 1, 'reported once, not on every poll');

    // Put right: the matching cert arrives, the error clears.
    await copyFile(third.cert, files.cert);
    await tls.poll();
    await tls.poll();
    assert.equal(tls.status().lastError, null);
    assert.equal(await servedFingerprint(port, ca.cert), third.fingerprint256);
  });
});
