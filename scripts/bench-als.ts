/**
 * Access Log Service sink benchmark: entries per second our sink ingests (decode, aggregates,
 * JSON line, bounded writer) next to a decode-only baseline sink, in the same run; peak memory
 * of each; the cost per line of our hand-rolled JSON formatter next to pino; and, in one process,
 * the CPU per entry of the full sink's work next to protobufjs' decode.
 *
 *   npm run build && node dist/scripts/bench-als.js [--entries 400000] [--streams 4] [--batch 50] [--runs 3]
 *
 * Three roles in one file, each its own process so memory figures are the sink's alone:
 *  - driver (default): for each run and each sink kind, forks a fresh sink and a fresh load
 *    generator, collects their reports, prints medians.
 *  - `--role sink --kind baseline|wire|full`: serves StreamAccessLogs on 127.0.0.1:0, reports
 *    {port}, then, once `--entries` entries have been ingested (and, for `full`, written or
 *    dropped), reports the ingest time, peak RSS/heap and the writer's counters.
 *  - `--role load --port P`: pre-encodes realistic StreamAccessLogsMessage batches (identifier on
 *    each stream's first message, as Envoy sends it), then streams `--entries` entries over
 *    `--streams` gRPC streams as fast as HTTP/2 flow control lets it.
 * The flood test (test/integration/sidecar-flood.test.ts) drives the sink and load roles too.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { messageType } from '../src/envoy/protos.js';
import { silentLogger } from '../src/log.js';
import { AlsSink, ALS_METHOD_PATH, alsServiceDefinition } from '../src/als/sink.js';
import { AccessLogWriter } from '../src/common/access-log-writer.js';
import { AccessAggregates } from '../src/als/aggregates.js';
import type { AccessRecord } from '../src/als/access-record.js';
import { decodeAlsMessage } from '../src/als/decode.js';
import { appendAccessLine, identityFields, LineBuffer } from '../src/als/json-line.js';
import { median } from './bench/stats.js';

const SELF = fileURLToPath(import.meta.url);

const OPTIONS = {
  role: { type: 'string', default: 'driver' },
  kind: { type: 'string', default: 'full' },
  port: { type: 'string' },
  entries: { type: 'string', default: '400000' },
  streams: { type: 'string', default: '4' },
  batch: { type: 'string', default: '50' },
  runs: { type: 'string', default: '3' },
  file: { type: 'string' },
  'max-queue-bytes': { type: 'string' },
  help: { type: 'boolean' },
} as const;
type Args = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

const USAGE = `usage: node dist/scripts/bench-als.js [options]
  --entries N          access-log entries per run (default 400000)
  --streams S          concurrent ALS streams (default 4; Envoy opens one per worker thread)
  --batch B            entries per StreamAccessLogsMessage (default 50, ~16 KiB like Envoy's buffer)
  --runs R             runs per sink kind; medians are printed (default 3)
  --file F             where the full sink writes its lines (default a temp file, removed after)
  --max-queue-bytes Q  the writer's queue bound (default the sink's, 8 MiB)`;

/** What a sink process reports when it has ingested every entry. */
export interface SinkReport {
  readonly kind: string;
  readonly entries: number;
  /** First message received -> last entry ingested (decoded, aggregated, line queued). */
  readonly ms: number;
  readonly entriesPerSec: number;
  /** CPU time (user + system, all threads) the sink process spent over `ms`. */
  readonly cpuMs: number;
  /** Entries per second of CPU: the capacity of one core, whatever else competes for the CPU. */
  readonly entriesPerCpuSec: number;
  /** `full`: first message -> every line written or dropped; undefined when the writer is stuck. */
  readonly drainedMs?: number;
  readonly baseRssMb: number;
  readonly peakRssMb: number;
  readonly peakHeapMb: number;
  readonly written: number;
  readonly dropped: number;
  readonly peakQueuedBytes: number;
  readonly maxQueueBytes: number;
}

const int = (v: string | undefined, name: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name}: expected a positive integer, got '${v}'`);
  return n;
};
const KINDS = ['baseline', 'wire', 'full'] as const;
type Kind = (typeof KINDS)[number];
const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

// ---------------------------------------------------------------- sink role

async function sinkRole(args: Args): Promise<void> {
  const expected = int(args.entries, 'entries');
  const kind = KINDS.find((k) => k === args.kind) ?? 'full';
  const baseRss = process.memoryUsage().rss;
  let peakRss = baseRss;
  let peakHeap = process.memoryUsage().heapUsed;
  let peakQueued = 0;
  let firstAt = 0;
  let cpuAtFirst: NodeJS.CpuUsage | undefined;
  const markFirst = () => {
    if (firstAt !== 0) return;
    firstAt = performance.now();
    cpuAtFirst = process.cpuUsage();
  };
  let count = 0;
  let writer: AccessLogWriter | undefined;
  let close: () => void;
  let port: number;
  let ingested: () => number;

  if (kind !== 'full') {
    // Decode-only sinks: grpc-js plus a deserializer, then only counting entries.
    //  baseline: protobufjs' generated decode of the whole message (the usual grpc-js + protobufjs loop);
    //  wire:     our wire reader (src/als/decode.ts), which the full sink uses.
    const T = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
    const countEntries: (b: Buffer) => number =
      kind === 'baseline'
        ? (b) => (T.decode(b) as unknown as { http_logs?: { log_entry?: unknown[] } }).http_logs?.log_entry?.length ?? 0
        : (b) => decodeAlsMessage(b).records.length;
    const server = new grpc.Server();
    server.addService(
      { StreamAccessLogs: { ...alsServiceDefinition().StreamAccessLogs!, requestDeserialize: countEntries } },
      {
        StreamAccessLogs: (call: grpc.ServerReadableStream<number, object>, done: grpc.sendUnaryData<object>) => {
          call.on('data', (n: number) => {
            markFirst();
            count += n;
          });
          call.on('end', () => done(null, {}));
          call.on('error', () => undefined);
        },
      },
    );
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    close = () => server.forceShutdown();
    ingested = () => count;
  } else {
    const file = args.file ?? path.join(os.tmpdir(), `cxds-bench-als-${process.pid}.log`);
    const maxQueueBytes = args['max-queue-bytes'] !== undefined ? int(args['max-queue-bytes'], 'max-queue-bytes') : undefined;
    writer = new AccessLogWriter({ file, logger: silentLogger, ...(maxQueueBytes !== undefined ? { maxQueueBytes } : {}) });
    await writer.open();
    const sink = new AlsSink({ writer, aggregates: new AccessAggregates(), logger: silentLogger });
    port = await sink.listen('127.0.0.1', 0);
    close = () => {
      sink.close();
      if (args.file === undefined) fs.rmSync(file, { force: true });
    };
    ingested = () => {
      const s = sink.stats();
      if (s.messages > 0) markFirst();
      return s.httpEntries;
    };
  }

  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
    if (writer) peakQueued = Math.max(peakQueued, writer.stats().queuedBytes);
    ingested();
  }, 10);
  process.send!({ port });

  // Poll: ingest runs on this event loop, so a 2 ms timer costs nothing noticeable.
  while (ingested() < expected) await new Promise((r) => setTimeout(r, 2));
  const ms = performance.now() - firstAt;
  const cpu = process.cpuUsage(cpuAtFirst);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  let drainedMs: number | undefined;
  if (writer) {
    // Done when every line is written or dropped; a stuck destination never gets there, so the
    // wait is bounded (the flood test's FIFO).
    const deadline = performance.now() + 2000;
    while (writer.stats().written + writer.stats().dropped < expected && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    if (writer.stats().written + writer.stats().dropped >= expected) drainedMs = Math.round(performance.now() - firstAt);
  }
  clearInterval(sampler);
  const w = writer?.stats();
  const report: SinkReport = {
    kind,
    entries: expected,
    ms: Math.round(ms),
    entriesPerSec: Math.round(expected / (ms / 1000)),
    cpuMs: Math.round(cpuMs),
    entriesPerCpuSec: Math.round(expected / (cpuMs / 1000)),
    ...(drainedMs !== undefined ? { drainedMs } : {}),
    baseRssMb: mb(baseRss),
    peakRssMb: mb(peakRss),
    peakHeapMb: mb(peakHeap),
    written: w?.written ?? 0,
    dropped: w?.dropped ?? 0,
    peakQueuedBytes: peakQueued,
    maxQueueBytes: w?.maxQueueBytes ?? 0,
  };
  process.send!({ report });
  await once(process, 'message'); // the driver says when to go
  close();
  if (writer) await writer.close(200);
  process.exit(0);
}

// ---------------------------------------------------------------- load role

const AUTHORITIES = ['www.mirrativ.com', 'mirrativ.com', 'api.example.com', 'static.example.com'];
const ROUTES = [
  ['api', 'web-api-perl', '/api/live/list'],
  ['api', 'web-api-go', '/api/user/me'],
  ['asset', 'web-asset', '/asset/img/banner.png'],
  ['default', 'web-api-perl', '/'],
] as const;

/** One realistic HTTP entry: status mostly 200, some 404/503, latencies spread over decades. */
function entry(i: number): object {
  const [route, cluster, p] = ROUTES[i % ROUTES.length]!;
  const status = i % 50 === 0 ? 503 : i % 17 === 0 ? 404 : 200;
  const ms = 0.3 + ((i * 7919) % 1000) ** 2 / 4000;
  return {
    common_properties: {
      // Entries arrive in time order, about 1,000 per second, as from a busy Envoy.
      start_time: { seconds: 1_700_000_000 + Math.floor(i / 1000), nanos: (i % 1000) * 1e6 },
      duration: { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) },
      time_to_first_upstream_rx_byte: { seconds: 0, nanos: Math.round((ms % 1000) * 5e5) },
      upstream_cluster: cluster,
      route_name: route,
      upstream_remote_address: { socket_address: { address: `10.0.${i % 4}.${10 + (i % 20)}`, port_value: 8080 } },
      downstream_remote_address: { socket_address: { address: `203.0.113.${i % 250}`, port_value: 40000 + (i % 20000) } },
      ...(status === 503 ? { response_flags: { no_healthy_upstream: true } } : {}),
    },
    protocol_version: 'HTTP11',
    request: {
      request_method: i % 5 === 0 ? 'POST' : 'GET',
      authority: AUTHORITIES[i % AUTHORITIES.length],
      path: `${p}?page=${i % 100}`,
      user_agent: 'Mozilla/5.0 (bench)',
      request_id: `0f6d2c1e-${(i % 65536).toString(16).padStart(4, '0')}-4b7a-9c3e-5d2a8b1c${(i % 9999).toString().padStart(4, '0')}`,
      request_body_bytes: i % 5 === 0 ? 512 : 0,
    },
    response: { response_code: { value: status }, response_body_bytes: 1024 + (i % 4096) },
  };
}

async function loadRole(args: Args): Promise<void> {
  const port = int(args.port, 'port');
  const total = int(args.entries, 'entries');
  const streams = int(args.streams, 'streams');
  const batch = int(args.batch, 'batch');
  const T = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
  const encode = (m: object) => Buffer.from(T.encode(T.fromObject(m)).finish());
  // 32 distinct batches, reused round-robin: encoding stays out of the measured loop.
  const batches: Buffer[] = [];
  for (let b = 0; b < 32; b++) batches.push(encode({ http_logs: { log_entry: Array.from({ length: batch }, (_, k) => entry(b * batch + k)) } }));
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
    'AccessLogService',
  );
  const client = new Raw(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const open = (
    client as unknown as { StreamAccessLogs: (cb: (e: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<Buffer> }
  ).StreamAccessLogs.bind(client);
  const started = performance.now();
  let queued = 0; // entries handed to some stream so far (all streams share this event loop)
  const take = () => {
    const n = Math.min(batch, total - queued);
    queued += n;
    return n;
  };
  const short = (n: number) => encode({ http_logs: { log_entry: Array.from({ length: n }, (_, k) => entry(k)) } });
  await Promise.all(
    Array.from({ length: streams }, async (_, s) => {
      let resolveDone!: () => void;
      const done = new Promise<void>((r) => (resolveDone = r));
      const call = open((e) => {
        if (e) console.error(`bench-als load: stream ${s}: ${e.message}`);
        resolveDone();
      });
      // Envoy puts the identifier on each stream's first message only.
      const n0 = take();
      call.write(
        encode({
          identifier: { node: { id: `bench-envoy-${s}`, cluster: 'bench' }, log_name: 'bench_als' },
          http_logs: { log_entry: Array.from({ length: n0 }, (_, k) => entry(k)) },
        }),
      );
      for (let m = 1; queued < total; m++) {
        const n = take();
        if (!call.write(n === batch ? batches[m % batches.length]! : short(n))) await once(call, 'drain');
      }
      call.end();
      await done;
    }),
  );
  process.send!({ sentMs: Math.round(performance.now() - started) });
  client.close();
  process.exit(0);
}

// ---------------------------------------------------------------- driver

function child(role: string, extra: string[]): ChildProcess {
  return fork(SELF, ['--role', role, ...extra], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function nextMessage<T>(c: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: Record<string, unknown>) => {
      if (key in m) {
        c.off('message', onMessage);
        c.off('exit', onExit);
        resolve(m[key] as T);
      }
    };
    const onExit = (code: number | null) => reject(new Error(`${key}: child exited with ${code}`));
    c.on('message', onMessage);
    c.once('exit', onExit);
  });
}

/** One sink + one load generator, both fresh processes. Exported for the flood test. */
export async function runOnce(opts: {
  kind: Kind;
  entries: number;
  streams: number;
  batch: number;
  file?: string;
  maxQueueBytes?: number;
}): Promise<SinkReport> {
  const sinkArgs = ['--kind', opts.kind, '--entries', String(opts.entries)];
  if (opts.file !== undefined) sinkArgs.push('--file', opts.file);
  if (opts.maxQueueBytes !== undefined) sinkArgs.push('--max-queue-bytes', String(opts.maxQueueBytes));
  const sink = child('sink', sinkArgs);
  let load: ChildProcess | undefined;
  try {
    const port = await nextMessage<number>(sink, 'port');
    const report = nextMessage<SinkReport>(sink, 'report');
    load = child('load', ['--port', String(port), '--entries', String(opts.entries), '--streams', String(opts.streams), '--batch', String(opts.batch)]);
    await nextMessage<number>(load, 'sentMs');
    const r = await report;
    sink.send({ stop: true });
    await Promise.race([once(sink, 'exit'), new Promise((res) => setTimeout(res, 5000))]);
    return r;
  } finally {
    sink.kill('SIGKILL');
    load?.kill('SIGKILL');
  }
}

/** ns per line: our formatter + bounded writer vs pino, both writing to /dev/null. */
async function formatterBench(n: number): Promise<{ fastNs: number; pinoNs: number }> {
  const T = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
  const records: AccessRecord[] = [];
  for (let i = 0; i < 1000; i++) records.push(...decodeAlsMessage(T.encode(T.fromObject({ http_logs: { log_entry: [entry(i)] } })).finish()).records);
  const identity = identityFields({ node: 'bench-envoy-0', cluster: 'bench', logName: 'bench_als' });
  const writer = new AccessLogWriter({ file: '/dev/null', logger: silentLogger });
  await writer.open();
  const dest = pino.destination({ dest: '/dev/null', sync: false, minLength: 8192 });
  const logger = pino({ base: null, timestamp: pino.stdTimeFunctions.isoTime }, dest).child({ node: 'bench-envoy-0', log_name: 'bench_als' });
  const timeIt = async (fn: (r: AccessRecord) => void): Promise<number> => {
    const t = performance.now();
    for (let i = 0; i < n; i++) {
      fn(records[i % records.length]!);
      if (i % 5000 === 4999) await new Promise((r) => setImmediate(r)); // let writes drain, as the sink does between messages
    }
    return ((performance.now() - t) * 1e6) / n;
  };
  const line = new LineBuffer();
  const fast = (r: AccessRecord) => {
    line.reset();
    appendAccessLine(line, r, identity, 0);
    writer.writeBytes(line.buf, 0, line.pos, 1);
  };
  const viaPino = (r: AccessRecord) =>
    logger.info({
      type: r.kind,
      method: r.method,
      authority: r.authority,
      path: r.path,
      protocol: r.protocol,
      status: r.status,
      route: r.route,
      upstream_cluster: r.cluster,
      upstream_host: r.upstreamHost,
      downstream: r.downstream,
      duration_ms: r.durationMs,
      upstream_ms: r.upstreamMs,
      bytes_in: r.bytesIn,
      bytes_out: r.bytesOut,
      flags: r.flags,
      request_id: r.requestId,
      user_agent: r.userAgent,
    });
  await timeIt(fast); // warm-up
  await timeIt(viaPino);
  const fastNs = [await timeIt(fast), await timeIt(fast), await timeIt(fast)];
  const pinoNs = [await timeIt(viaPino), await timeIt(viaPino), await timeIt(viaPino)];
  await writer.close();
  dest.flushSync();
  return { fastNs: Math.round(median(fastNs)), pinoNs: Math.round(median(pinoNs)) };
}

/**
 * CPU µs per entry in this one process, without grpc-js or a second process competing: the
 * protobufjs decode of each message (the baseline's work) against the full sink's work on it
 * (AlsSink.ingest after our decode: aggregates, JSON lines, the writer to /dev/null), alternated,
 * medians of 7. Steadier than the sink runs on a shared machine; ours/baseline is the ratio.
 */
async function ingestBench(batch: number): Promise<{ baselineUs: number; fullUs: number }> {
  const T = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
  const messages: Buffer[] = [];
  for (let b = 0; b < 32; b++) {
    messages.push(Buffer.from(T.encode(T.fromObject({ http_logs: { log_entry: Array.from({ length: batch }, (_, k) => entry(b * batch + k)) } })).finish()));
  }
  const writer = new AccessLogWriter({ file: '/dev/null', logger: silentLogger });
  await writer.open();
  const sink = new AlsSink({ writer, aggregates: new AccessAggregates(), logger: silentLogger });
  const identity = identityFields({ node: 'bench-envoy-0', cluster: 'bench', logName: 'bench_als' });
  const n = 2000;
  const timeIt = async (fn: (b: Buffer) => void): Promise<number> => {
    const cpu = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      fn(messages[i % messages.length]!);
      if (i % 20 === 19) await new Promise((r) => setImmediate(r)); // let writes go, as between socket reads
    }
    await writer.flush();
    const c = process.cpuUsage(cpu);
    return (c.user + c.system) / (n * batch);
  };
  const baseline = (b: Buffer) => void T.decode(b);
  const full = (b: Buffer) => sink.ingest(decodeAlsMessage(b), identity);
  await timeIt(baseline); // warm-up
  await timeIt(full);
  const b: number[] = [];
  const f: number[] = [];
  for (let r = 0; r < 7; r++) {
    b.push(await timeIt(baseline));
    f.push(await timeIt(full));
  }
  await writer.close();
  sink.close();
  return { baselineUs: median(b), fullUs: median(f) };
}

async function driver(args: Args): Promise<void> {
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const entries = int(args.entries, 'entries');
  const streams = int(args.streams, 'streams');
  const batch = int(args.batch, 'batch');
  const runs = int(args.runs, 'runs');
  const maxQueueBytes = args['max-queue-bytes'] !== undefined ? int(args['max-queue-bytes'], 'max-queue-bytes') : undefined;
  console.error(
    `bench-als: ${entries} entries over ${streams} streams, ${batch} entries/message, ${runs} runs per sink (${os.cpus().length} CPUs, node ${process.version})`,
  );
  const results: Record<Kind, SinkReport[]> = { baseline: [], wire: [], full: [] };
  for (let r = 0; r < runs; r++) {
    for (const kind of KINDS) {
      const rep = await runOnce({
        kind,
        entries,
        streams,
        batch,
        ...(args.file !== undefined ? { file: args.file } : {}),
        ...(maxQueueBytes !== undefined ? { maxQueueBytes } : {}),
      });
      results[kind].push(rep);
      console.error(
        `  run ${r + 1} ${kind.padEnd(8)} ${String(rep.entriesPerSec).padStart(8)} entries/s  ${rep.ms} ms  ${String(rep.entriesPerCpuSec).padStart(8)} entries/CPU-s  peak RSS ${rep.peakRssMb} MB (start ${rep.baseRssMb} MB)  peak heap ${rep.peakHeapMb} MB${kind === 'full' ? `  all written after ${rep.drainedMs ?? '-'} ms  written ${rep.written} dropped ${rep.dropped} peak queue ${mb(rep.peakQueuedBytes)} MB` : ''}`,
      );
    }
  }
  const fmt = await formatterBench(200_000);
  const ing = await ingestBench(batch);
  const row = (kind: Kind, label: string) => {
    const reps = results[kind];
    return `| ${label} | ${median(reps.map((x) => x.entriesPerSec)).toLocaleString('en-US')} | ${median(reps.map((x) => x.entriesPerCpuSec)).toLocaleString('en-US')} | ${Math.max(...reps.map((x) => x.peakRssMb))} | ${Math.max(...reps.map((x) => x.peakHeapMb))} | ${kind === 'full' ? reps.reduce((n, x) => n + x.dropped, 0) : '-'} |`;
  };
  const ratio = median(results.full.map((x) => x.entriesPerSec)) / median(results.baseline.map((x) => x.entriesPerSec));
  console.log(`
ALS sink ingest, ${entries.toLocaleString('en-US')} entries x ${runs} runs, ${streams} streams, ${batch} entries/message
| sink | entries/s (median) | entries per CPU-second (median) | peak RSS MB (max) | peak heap MB (max) | dropped |
|---|---|---|---|---|---|
${row('baseline', 'decode-only baseline (protobufjs decode)')}
${row('wire', 'decode-only, our wire reader')}
${row('full', 'consul-xds sink (JSON lines to file + aggregates)')}
full / baseline: ${(ratio * 100).toFixed(0)} %

JSON line + write, per entry (median of 3 x 200k): hand-rolled ${fmt.fastNs} ns, pino ${fmt.pinoNs} ns
In one process, CPU per entry (median of 7): protobufjs decode ${ing.baselineUs.toFixed(2)} us, full sink ingest ${ing.fullUs.toFixed(2)} us: full / baseline speed ${(ing.baselineUs / ing.fullUs).toFixed(2)}x`);
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(SELF)) {
  const { values } = parseArgs({ options: OPTIONS });
  const roles: Record<string, (a: Args) => Promise<void>> = { sink: sinkRole, load: loadRole, driver };
  const run = roles[values.role];
  if (!run) {
    console.error(`bench-als: unknown --role ${values.role}\n${USAGE}`);
    process.exit(2);
  }
  run(values).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
