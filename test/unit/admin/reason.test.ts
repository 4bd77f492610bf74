/**
 * The health answer's status line as it goes out on the wire. Node has no reason phrase for 599
 * and sends `599 unknown` unless told otherwise; load balancers and curl -v show that phrase, so
 * the maintenance answer must read `HTTP/1.1 599 MAINTENANCE`. Read over a raw socket, because
 * fetch() does not expose the reason phrase.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SnapshotCache } from '../../../src/cache/snapshot-cache.js';
import { createXdsServer } from '../../../src/server/index.js';
import { startSidecar } from '../../../src/sidecar.js';
import { silentLogger } from '../../../src/log.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxds-reason-'));
const maintenanceFile = path.join(dir, 'maintenance');
const cache = new SnapshotCache();
const xds = createXdsServer({ cache, logger: silentLogger });
const sidecar = await startSidecar({
  cache,
  registry: xds.registry,
  logger: silentLogger,
  admin: { port: 0, maintenanceFile },
  als: false,
  processMetrics: false,
});

after(async () => {
  await sidecar.close();
  await xds.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The first line of the raw HTTP/1.1 response to GET `p`. */
function statusLine(p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(sidecar.adminPort, '127.0.0.1');
    let got = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      got += chunk;
      const end = got.indexOf('\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(got.slice(0, end));
      }
    });
    socket.on('error', reject);
    socket.write(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  });
}

test('the maintenance answer goes out as "HTTP/1.1 599 MAINTENANCE", the others keep their standard phrase', async () => {
  assert.equal(await statusLine('/health'), 'HTTP/1.1 503 Service Unavailable');
  fs.writeFileSync(maintenanceFile, '');
  assert.equal(await statusLine('/health'), 'HTTP/1.1 599 MAINTENANCE');
  fs.rmSync(maintenanceFile);
  assert.equal(await statusLine('/health'), 'HTTP/1.1 503 Service Unavailable');
});
