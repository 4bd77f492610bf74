/**
 * The ALS sink over loopback gRPC with a real grpc-js client: the identifier from the first
 * message labels every later entry of that stream; HTTP and TCP entries become JSON lines with
 * the fields people grep for and land in the aggregates; no reply is sent before the client ends
 * the stream; a message that does not decode ends only its own stream.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { AlsSink, ALS_METHOD_PATH, alsServiceDefinition } from '../../../src/als/sink.js';
import { AccessLogWriter } from '../../../src/common/access-log-writer.js';
import { AccessAggregates } from '../../../src/als/aggregates.js';
import { silentLogger } from '../../../src/log.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxds-als-'));
const file = path.join(dir, 'access.log');
const writer = new AccessLogWriter({ file, logger: silentLogger });
const aggregates = new AccessAggregates();
const sink = new AlsSink({ writer, aggregates, logger: silentLogger });
let client: grpc.Client;
let port = 0;

type AlsCall = grpc.ClientWritableStream<object>;
function openStream(done: (err: grpc.ServiceError | null) => void): AlsCall {
  const method = (client as unknown as Record<string, (cb: (err: grpc.ServiceError | null) => void) => AlsCall>).StreamAccessLogs!;
  return method.call(client, done);
}

before(async () => {
  await writer.open();
  port = await sink.listen('127.0.0.1', 0);
  const Ctor = grpc.makeGenericClientConstructor(alsServiceDefinition(), 'AccessLogService');
  client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

after(async () => {
  client.close();
  sink.close();
  await writer.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function httpEntry(status: number, cluster: string, ms: number, flags: Record<string, boolean> = {}): object {
  return {
    common_properties: {
      start_time: { seconds: 1_700_000_000, nanos: 250_000_000 },
      duration: { seconds: 0, nanos: ms * 1e6 },
      time_to_first_upstream_rx_byte: { seconds: 0, nanos: (ms / 2) * 1e6 },
      upstream_cluster: cluster,
      upstream_remote_address: { socket_address: { address: '127.0.0.1', port_value: 8080 } },
      downstream_remote_address: { socket_address: { address: '127.0.0.1', port_value: 51000 } },
      route_name: 'api',
      response_flags: flags,
    },
    protocol_version: 'HTTP11',
    request: { request_method: 'POST', authority: 'www.mirrativ.com', path: '/api/"quoted"\n', request_id: 'req-1', request_body_bytes: 12 },
    response: { response_code: { value: status }, response_body_bytes: 2048 },
  };
}

async function linesUntil(n: number): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    await writer.flush();
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    const lines = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    if (lines.length >= n || Date.now() > deadline) return lines;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('HTTP and TCP entries become JSON lines labelled with the stream identifier', async () => {
  let replied = false;
  const finished = new Promise<grpc.ServiceError | null>((resolve) => {
    const call = openStream((err) => {
      replied = true;
      resolve(err);
    });
    call.write({ identifier: { node: { id: 'envoy-1', cluster: 'edge' }, log_name: 'als' }, http_logs: { log_entry: [httpEntry(200, 'web-api-perl', 4)] } });
    call.write({ http_logs: { log_entry: [httpEntry(503, 'web-api-go', 40, { no_healthy_upstream: true, upstream_retry_limit_exceeded: true })] } });
    call.write({
      tcp_logs: {
        log_entry: [
          {
            common_properties: { upstream_cluster: 'mongo', duration: { seconds: 2, nanos: 0 } },
            connection_properties: { received_bytes: 10, sent_bytes: 20 },
          },
        ],
      },
    });
    setTimeout(() => {
      assert.equal(replied, false, 'no reply while the stream is open');
      call.end();
    }, 200);
  });
  const lines = await linesUntil(3);
  assert.equal(lines.length, 3);
  const [ok, failed, tcp] = lines;
  assert.deepEqual(ok, {
    time: '2023-11-14T22:13:20.250Z',
    type: 'http',
    node: 'envoy-1',
    log_name: 'als',
    method: 'POST',
    authority: 'www.mirrativ.com',
    path: '/api/"quoted"\n',
    protocol: 'HTTP/1.1',
    status: 200,
    route: 'api',
    upstream_cluster: 'web-api-perl',
    upstream_host: '127.0.0.1:8080',
    downstream: '127.0.0.1:51000',
    duration_ms: 4,
    upstream_ms: 2,
    bytes_in: 12,
    bytes_out: 2048,
    request_id: 'req-1',
  });
  assert.equal(failed?.node, 'envoy-1', 'identifier of the first message labels later messages');
  assert.equal(failed?.status, 503);
  assert.equal(failed?.flags, 'UH,URX');
  assert.deepEqual(tcp, {
    time: tcp?.time,
    type: 'tcp',
    node: 'envoy-1',
    log_name: 'als',
    upstream_cluster: 'mongo',
    duration_ms: 2000,
    bytes_in: 10,
    bytes_out: 20,
  });
  assert.equal(await finished, null, 'the call completes with OK once the client ends it');

  const snap = aggregates.snapshot();
  const byCluster = Object.fromEntries(snap.clusters.map((c) => [c.cluster, c]));
  assert.equal(byCluster['web-api-perl']?.window.classes['2xx'], 1);
  assert.equal(byCluster['web-api-go']?.window.classes['5xx'], 1);
  assert.equal(byCluster.mongo?.window.classes.none, 1);
  const route = snap.routes.find((r) => r.vhost === 'www.mirrativ.com' && r.route === 'api');
  assert.equal(route?.window.requests, 2);
  assert.ok(route?.window.p99_ms !== undefined && Math.abs(route.window.p99_ms - 40) < 4);
  assert.deepEqual({ ...sink.stats(), streamsTotal: 0 }, { streamsOpen: 0, streamsTotal: 0, messages: 3, httpEntries: 2, tcpEntries: 1, withoutIdentifier: 0 });
});

test('a malformed message ends only its own stream; the sink keeps serving', async () => {
  const Raw = grpc.makeGenericClientConstructor(
    {
      StreamAccessLogs: {
        path: ALS_METHOD_PATH,
        requestStream: true,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    'Raw',
  );
  const raw = new Raw(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const err = await new Promise<grpc.ServiceError | null>((resolve) => {
    const call = (raw as unknown as { StreamAccessLogs: (cb: (e: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<Buffer> }).StreamAccessLogs(
      resolve,
    );
    call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])); // a length far past the end
  });
  raw.close();
  assert.equal(err?.code, grpc.status.INTERNAL);

  const before = sink.stats().httpEntries;
  await new Promise<void>((resolve, reject) => {
    const call = openStream((e) => (e ? reject(e) : resolve()));
    call.write({ http_logs: { log_entry: [httpEntry(404, 'web-asset', 1)] } });
    call.end();
  });
  assert.equal(sink.stats().httpEntries, before + 1);
  assert.equal(sink.stats().withoutIdentifier, 1, 'a stream without identifier is counted');
  const lines = await linesUntil(4);
  assert.equal(lines[3]?.node, 'unknown');
});
