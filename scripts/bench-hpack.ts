/**
 * HPACK micro benchmark: ns per encode and decode of a typical gRPC request header block (grpc-go's
 * fields for a unary call), warm (a connection's later requests: every field an index in the dynamic
 * table) and cold (a new connection's first request: literals that fill the table, new encoder or
 * decoder included). Ours (src/proxy/codec/http2/hpack.ts) side by side with golang.org/x/net's
 * hpack (scripts/bench-peers/go-hpack, grpc-go's HPACK), which decodes the same bytes ours produced.
 *
 *   npm run build && npm run bench:hpack -- [--iterations 200000] [--peer go|none]
 *
 * Each figure is the median of 7 rounds of `iterations` calls, after a warm-up round.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { HpackDecoder, HpackEncoder } from '../src/proxy/codec/http2/hpack.js';
import { goPeerBinary } from './bench/go-peer.js';
import { median } from './bench/stats.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// biome-ignore format: one field per line pair
const FIELDS: readonly string[] = [
  ':method', 'POST', ':scheme', 'http', ':path', '/consulxds.bench.Echo/Unary', ':authority', 'localhost:10000',
  'content-type', 'application/grpc', 'te', 'trailers', 'grpc-accept-encoding', 'identity,deflate,gzip', 'user-agent', 'grpc-go/1.70.0',
];
const CASES = ['encodeWarm', 'encodeCold', 'decodeWarm', 'decodeCold'] as const;
type Case = (typeof CASES)[number];

const { values: args } = parseArgs({
  options: { iterations: { type: 'string', default: '200000' }, peer: { type: 'string', default: 'go' } },
});
const iterations = Number(args.iterations);
if (!Number.isInteger(iterations) || iterations <= 0) throw new Error(`--iterations ${args.iterations} is not a positive integer`);
if (args.peer !== 'go' && args.peer !== 'none') throw new Error(`--peer ${args.peer}: go or none`);

let sink = 0;

function measure(fn: () => void): number {
  const round = (): number => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    return Number(process.hrtime.bigint() - start) / iterations;
  };
  round();
  return median(Array.from({ length: 7 }, round));
}

const cold = new HpackEncoder().encode(FIELDS);
const warmEncoder = new HpackEncoder();
warmEncoder.encode(FIELDS);
const warm = warmEncoder.encode(FIELDS);
const warmDecoder = new HpackDecoder();
warmDecoder.decode(cold, 0, cold.length);

const ours: Record<Case, number> = {
  encodeWarm: measure(() => {
    sink += warmEncoder.encode(FIELDS).length;
  }),
  encodeCold: measure(() => {
    sink += new HpackEncoder().encode(FIELDS).length;
  }),
  decodeWarm: measure(() => {
    sink += warmDecoder.decode(warm, 0, warm.length).length;
  }),
  decodeCold: measure(() => {
    sink += new HpackDecoder().decode(cold, 0, cold.length).length;
  }),
};

let peer: Record<Case, number> | undefined;
if (args.peer === 'go') {
  const bin = goPeerBinary(ROOT, 'go-hpack', (line) => process.stderr.write(`${line}\n`));
  const out = execFileSync(bin, [cold.toString('hex'), warm.toString('hex'), String(iterations)], { encoding: 'utf8' });
  peer = JSON.parse(out) as Record<Case, number>;
}

console.log(`gRPC request block: ${FIELDS.length / 2} fields, cold ${cold.length} bytes, warm ${warm.length} bytes; ${iterations} calls x 7 rounds (median)`);
console.log(`${'case'.padEnd(12)} ${'ours ns/op'.padStart(12)}${peer ? ` ${'Go x/net ns/op'.padStart(16)}` : ''}`);
for (const c of CASES) {
  console.log(`${c.padEnd(12)} ${ours[c].toFixed(0).padStart(12)}${peer ? ` ${peer[c].toFixed(0).padStart(16)}` : ''}`);
}
if (sink === 0) console.log('');
