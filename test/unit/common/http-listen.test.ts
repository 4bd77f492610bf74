/**
 * bindHttpServer, which both admin servers (sidecar and data plane) bind with: a port in use
 * rejects the bind; an error the server emits after listening is logged with its code and the
 * server keeps answering (without a listener, `emit('error')` throws: an uncaught exception that
 * would end the process).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { bindHttpServer } from '../../../src/common/http-listen.js';
import { captureLog } from '../../support/log-capture.js';

test('a bind failure rejects; a later server error is logged and the server keeps answering', async (t) => {
  const log = captureLog();
  const server = http.createServer((_req, res) => res.end('up'));
  const port = await bindHttpServer(server, '127.0.0.1', 0, log.logger);
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  assert.ok(port > 0);

  const other = http.createServer();
  await assert.rejects(bindHttpServer(other, '127.0.0.1', port, log.logger), /EADDRINUSE/);

  const accept = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' });
  assert.doesNotThrow(() => server.emit('error', accept));
  const line = await log.waitFor((r) => r.msg === 'HTTP server error', { what: 'the server error to be logged' });
  assert.deepEqual([line.level, line.code, line.err, line.address], [50, 'EMFILE', 'accept EMFILE', `127.0.0.1:${port}`]);
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } });
  assert.equal(await res.text(), 'up');
});
