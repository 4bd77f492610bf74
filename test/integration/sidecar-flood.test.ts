/**
 * Flood: a separate load-generator process streams 500,000 access-log entries over 4 gRPC streams
 * into the sink (its own process too, so its memory is measured alone), whose log destination is
 * stuck: a FIFO whose reader never reads, so after the first 64 KiB nothing is accepted, as with
 * a hung disk. The sink must keep
 * ingesting (Envoy's stream is never stalled by the disk), drop and count lines, keep its write
 * queue within maxQueueBytes, and hold far less memory than the log text it was sent.
 *
 * Stated bound: peak RSS growth during the flood < 100 MB, while the flood carries ~220 MB of log
 * text (which an unbounded queue would hold). It comes from: the write queue (1 MiB here),
 * the aggregates (fixed per key), HTTP/2 flow-control windows per stream, and garbage the GC has
 * not yet collected.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runOnce } from '../../scripts/bench-als.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxds-flood-'));
let reader: ChildProcess | undefined;
after(() => {
  reader?.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

const ENTRIES = 500_000;
const MAX_QUEUE_BYTES = 1024 * 1024;
const RSS_GROWTH_BOUND_MB = 100;

test('a flood into a stuck log destination: bounded memory, drops counted, ingest never stalls', { timeout: 120_000 }, async () => {
  const fifo = path.join(dir, 'stuck.fifo');
  execFileSync('mkfifo', [fifo]);
  reader = spawn('sh', ['-c', 'exec 3<"$0"; exec sleep 600', fifo], { stdio: 'ignore' });

  const r = await runOnce({ kind: 'full', entries: ENTRIES, streams: 4, batch: 50, file: fifo, maxQueueBytes: MAX_QUEUE_BYTES });
  const growth = r.peakRssMb - r.baseRssMb;
  const summary = JSON.stringify(r);
  assert.equal(r.entries, ENTRIES, summary);
  assert.ok(r.dropped > ENTRIES / 2, `most lines are dropped when nothing is written: ${summary}`);
  assert.ok(r.written < 1000, `only what fits the pipe buffer got written: ${summary}`);
  assert.ok(r.peakQueuedBytes <= MAX_QUEUE_BYTES, `write queue within ${MAX_QUEUE_BYTES} bytes: ${summary}`);
  assert.ok(growth < RSS_GROWTH_BOUND_MB, `peak RSS grew ${growth.toFixed(1)} MB, bound ${RSS_GROWTH_BOUND_MB} MB: ${summary}`);
  console.log(
    `flood: ${r.entriesPerSec} entries/s ingested, ${r.dropped} lines dropped, peak RSS ${r.peakRssMb} MB (+${growth.toFixed(1)} MB), peak heap ${r.peakHeapMb} MB, peak queue ${r.peakQueuedBytes} bytes`,
  );
});
