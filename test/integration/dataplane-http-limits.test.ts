/**
 * Slow-client limits of our data plane that Envoy has no counterpart for in this setup (Envoy
 * detects HTTP/1 vs HTTP/2 inside its codec, without a listener filter), from hand-written
 * listeners served by a real xDS server: the protocol sniffing of an AUTO listener must end
 * within listener_filters_timeout; a client that sends nothing, or stops inside the HTTP/2
 * preface, is disconnected, and with continue_on_listener_filters_timeout it is handed to HTTP/1;
 * either way the timeout counts in listener.<addr>_<port>.downstream_pre_cx_timeout. Also: an
 * error on a listener socket after its bind (a failed accept) is logged and the listener serves on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { ProtoObject } from '../../src/xds/resources.js';
import { startXds, type XdsHarness } from '../support/xds-harness.js';
import { startDataplane, type DataplaneHandle } from '../support/dataplane.js';
import { captureLog } from '../support/log-capture.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const ADS = { ads: {}, resource_api_version: 'V3' };
const SNIFF_MS = 300;

function listener(name: string, extra: Record<string, unknown>): ProtoObject {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    listener_filters_timeout: { nanos: SNIFF_MS * 1_000_000 },
    ...extra,
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM,
              stat_prefix: name,
              rds: { route_config_name: 'routes', config_source: ADS },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
            },
          },
        ],
      },
    ],
  };
}

interface Outcome {
  readonly data: string;
  readonly closedAfterMs: number | undefined;
}

/**
 * Connects, writes `first`, waits `pauseMs`, writes `then` (if the socket is still open), and
 * collects the answer until the peer closes or `waitMs` pass.
 */
function converse(port: number, first: string, pauseMs: number, then: string, waitMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let data = '';
    const socket = net.connect(port, '127.0.0.1', () => {
      if (first !== '') socket.write(first);
      setTimeout(() => {
        if (then !== '' && !socket.destroyed) socket.write(then);
      }, pauseMs);
    });
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (data += c));
    const giveUp = setTimeout(() => {
      socket.destroy();
      resolve({ data, closedAfterMs: undefined });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(giveUp);
      resolve({ data, closedAfterMs: Date.now() - started });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET') reject(err);
    });
  });
}

describe('our proxy: protocol-sniff timeout (listener_filters_timeout), listener socket errors', () => {
  let xds: XdsHarness | undefined;
  let dp: DataplaneHandle | undefined;
  let strict = 0;
  let lenient = 0;
  const log = captureLog();
  const preCxTimeouts = async (port: number): Promise<number | undefined> =>
    (await dp?.stats('downstream_pre_cx_timeout'))?.get(`listener.127.0.0.1_${port}.downstream_pre_cx_timeout`);

  before(async () => {
    xds = await startXds({
      set: {
        clusters: [],
        endpoints: [],
        listeners: [listener('strict', {}), listener('lenient', { continue_on_listener_filters_timeout: true })],
        routes: [
          {
            name: 'routes',
            virtual_hosts: [
              { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'hello' } } }] },
            ],
          },
        ],
      },
    });
    dp = await startDataplane({ xdsPort: xds.port, nodeId: 'dataplane-http-limits', nodeCluster: 'edge', logger: log.logger });
    await dp.proxy.whenLive(20_000);
    strict = dp.proxy.listenerPort('strict') ?? 0;
    lenient = dp.proxy.listenerPort('lenient') ?? 0;
  });

  after(async () => {
    await dp?.stop();
    await xds?.close();
  });

  it('closes a connection that sends nothing, or stops inside the HTTP/2 preface, once the timeout passes', async () => {
    for (const first of ['', 'PRI * HTTP/2.0\r\n']) {
      const o = await converse(strict, first, 0, '', 5_000);
      assert.ok(o.closedAfterMs !== undefined, `still open after 5 s with ${JSON.stringify(first)} sent`);
      assert.ok(o.closedAfterMs >= SNIFF_MS - 50, `closed after ${o.closedAfterMs} ms, before the timeout`);
      assert.equal(o.data, '', 'closed without an answer');
    }
    assert.equal(await preCxTimeouts(strict), 2);
  });

  it('a complete request is not affected: HTTP/1.1 is told apart at its first byte', async () => {
    const o = await converse(strict, 'GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', 0, '', 5_000);
    assert.match(o.data, /^HTTP\/1\.1 200 [\s\S]*hello$/);
  });

  it('with continue_on_listener_filters_timeout, a client still undecided at the timeout is served as HTTP/1', async () => {
    // 'P' could begin the HTTP/2 preface or 'POST': the sniffing waits, times out, and hands over.
    const request = 'OST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';
    const served = await converse(lenient, 'P', SNIFF_MS * 2, request, 5_000);
    assert.match(served.data, /^HTTP\/1\.1 200 [\s\S]*hello$/, `answer: ${JSON.stringify(served.data)}`);
    const refused = await converse(strict, 'P', SNIFF_MS * 2, request, 5_000);
    assert.equal(refused.data, '', 'the strict listener closed the connection instead');
    // Envoy counts a listener-filter timeout whether the connection is closed or continues.
    assert.equal(await preCxTimeouts(lenient), 1);
    assert.equal(await preCxTimeouts(strict), 3);
  });

  it('an error on a listener socket after the bind (a failed accept) is logged with its code; the listener serves on', async () => {
    const server = dp?.proxy.listeners.get('strict')?.server;
    assert.ok(server, 'the strict listener');
    const since = log.records.length;
    assert.doesNotThrow(() => server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' })));
    const line = await log.waitFor((r) => r.msg === 'listener socket error', { what: 'the listener error to be logged', since });
    assert.deepEqual([line.level, line.listener, line.code, line.address], [50, 'strict', 'EMFILE', `127.0.0.1:${strict}`]);
    const o = await converse(strict, 'GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', 0, '', 5_000);
    assert.match(o.data, /^HTTP\/1\.1 200 [\s\S]*hello$/);
  });
});
