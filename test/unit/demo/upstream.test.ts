/**
 * The demo upstreams answer every path and name themselves on each protocol: HTTP/1.1 and h2c
 * (header x-upstream and the JSON body), gRPC (consulxds.demo.Greeter/Hello through a real
 * grpc-js client, its hand-written codec checked against examples/greeter.proto with protobufjs),
 * and TCP (bytes echoed). They count connections and requests; `?delay=MS` slows an answer.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Client, credentials } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { GREETER_DEFINITION, startDemoUpstream } from '../../../src/demo/upstream.js';
import { decodeStringField, encodeStringField } from '../../../src/demo/greeter-codec.js';

const PROTO = fileURLToPath(new URL('../../../../examples/greeter.proto', import.meta.url));

it('http1: any method and path gets 200 with its name; requests and connections are counted', async () => {
  const u = await startDemoUpstream({ name: 'web-api-go', protocol: 'http1', port: 0 });
  try {
    for (const [method, path] of [
      ['GET', '/api/users?x=1'],
      ['POST', '/anything/at/all'],
    ] as const) {
      const res = await fetch(`http://127.0.0.1:${u.port}${path}`, { method, ...(method === 'POST' ? { body: 'payload' } : {}) });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-upstream'), 'web-api-go');
      assert.deepEqual(await res.json(), { upstream: 'web-api-go', path, host: `127.0.0.1:${u.port}`, protocol: 'HTTP/1.1' });
    }
    assert.equal(u.requests().count, 2);
    const t0 = Date.now();
    assert.equal((await fetch(`http://127.0.0.1:${u.port}/slow?delay=300`)).status, 200);
    assert.ok(Date.now() - t0 >= 290, '?delay=300 holds the answer 300 ms');
    assert.ok(u.connections() >= 1);
  } finally {
    await u.close();
  }
});

it('h2c: cleartext HTTP/2 with prior knowledge', async () => {
  const u = await startDemoUpstream({ name: 'inference', protocol: 'h2c', port: 0 });
  const session = http2.connect(`http://127.0.0.1:${u.port}`);
  try {
    const { headers, body } = await new Promise<{ headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = session.request({ ':path': '/predict', ':method': 'POST' });
      let text = '';
      let head: http2.IncomingHttpHeaders = {};
      req.on('response', (h) => (head = h));
      req.setEncoding('utf8');
      req.on('data', (d: string) => (text += d));
      req.on('end', () => resolve({ headers: head, body: text }));
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(headers[':status'], 200);
    assert.equal(headers['x-upstream'], 'inference');
    assert.equal((JSON.parse(body) as { protocol: string; upstream: string }).upstream, 'inference');
    assert.equal(u.connections(), 1);
  } finally {
    session.close();
    await u.close();
  }
});

it('grpc: Greeter/Hello answers with the backend name; the codec matches examples/greeter.proto', async () => {
  const root = await protobuf.load(PROTO);
  const req = root.lookupType('consulxds.demo.HelloRequest');
  const rep = root.lookupType('consulxds.demo.HelloReply');
  for (const text of ['', 'me', 'ü'.repeat(200)]) {
    assert.deepEqual(Buffer.from(req.encode({ name: text }).finish()), encodeStringField(text));
    assert.equal(decodeStringField(Buffer.from(rep.encode({ backend: text }).finish())), text);
  }
  const u = await startDemoUpstream({ name: 'g2', protocol: 'grpc', port: 0 });
  const client = new Client(`127.0.0.1:${u.port}`, credentials.createInsecure());
  try {
    const def = GREETER_DEFINITION.Hello;
    const reply = await new Promise<string>((resolve, reject) =>
      client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, 'caller', (err, r) => (err ? reject(err) : resolve(r ?? ''))),
    );
    assert.equal(reply, 'g2');
  } finally {
    client.close();
    await u.close();
  }
});

it('tcp: every byte comes back', async () => {
  const u = await startDemoUpstream({ name: 'mongodb-0', protocol: 'tcp', port: 0 });
  try {
    const sent = Buffer.from([0, 1, 2, 255, 10, 13, 0x4d]);
    const got = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const s = net.connect(u.port, '127.0.0.1', () => s.write(sent));
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        if (Buffer.concat(chunks).length >= sent.length) s.end();
      });
      s.on('close', () => resolve(Buffer.concat(chunks)));
      s.on('error', reject);
    });
    assert.deepEqual(got, sent);
    assert.equal(u.connections(), 1);
  } finally {
    await u.close();
  }
});
