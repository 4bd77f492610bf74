/**
 * The bounded access-log writer: lines reach the file in order (small and huge lines, multi-byte
 * characters); with a stuck destination (a FIFO whose reader never reads: the pipe fills and
 * stays full, like a hung disk) the queue stays within its bound, new lines are dropped and
 * counted, the caller is never blocked, and close() does not hang.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { AccessLogWriter } from '../../src/sidecar/access-log-writer.js';
import { silentLogger } from '../../src/log.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxds-writer-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('lines are appended in order and counted as written', async () => {
  const file = path.join(dir, 'ordered.log');
  const w = new AccessLogWriter({ file, logger: silentLogger });
  await w.open();
  for (let i = 0; i < 5000; i++) assert.equal(w.write(`{"i":${i}}\n`), true);
  await w.flush();
  for (let i = 5000; i < 6000; i++) w.write(`{"i":${i}}\n`);
  await w.close();
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 6000);
  lines.forEach((l, i) => assert.equal((JSON.parse(l) as { i: number }).i, i));
  assert.deepEqual({ ...w.stats(), maxQueueBytes: 0 }, { written: 6000, dropped: 0, writeErrors: 0, queuedBytes: 0, maxQueueBytes: 0 });
  assert.equal(w.write('late\n'), false, 'a closed writer refuses lines');
});

test('small batches, multi-byte characters and lines longer than a chunk keep order and bytes', async () => {
  const file = path.join(dir, 'mixed.log');
  const w = new AccessLogWriter({ file, logger: silentLogger, maxQueueBytes: 256 * 1024 });
  await w.open();
  const expected: string[] = [];
  for (let i = 0; i < 300; i++) {
    const line = i % 50 === 0 ? `${'ü☃'.repeat(9000)}${i}\n` : `{"i":${i},"s":"ünïcødé ☃ 𝄞"}\n`;
    expected.push(line);
    if (i % 50 === 0) await w.flush(); // room for the big line within the 256 KiB bound
    assert.equal(w.write(line), true, `line ${i} accepted`);
    if (i % 7 === 0) await new Promise((r) => setImmediate(r)); // a write per few lines
  }
  await w.close();
  assert.equal(fs.readFileSync(file, 'utf8'), expected.join(''));
  assert.equal(w.stats().written, 300);
});

test('a stuck destination: bounded queue, newest lines dropped and counted, caller never blocks', async () => {
  const fifo = path.join(dir, 'stuck.fifo');
  execFileSync('mkfifo', [fifo]);
  // The reader opens the FIFO and then never reads: once the pipe buffer (64 KiB) is full,
  // nothing more is accepted (the writer opens FIFOs non-blocking, so it sees EAGAIN and retries
  // rather than parking a thread in write(2)).
  const reader = spawn('sh', ['-c', 'exec 3<"$0"; exec sleep 600', fifo], { stdio: 'ignore' });
  children.push(reader);
  const maxQueueBytes = 256 * 1024;
  const w = new AccessLogWriter({ file: fifo, logger: silentLogger, maxQueueBytes });
  await w.open();
  const line = `${JSON.stringify({ pad: 'x'.repeat(180) })}\n`;
  let accepted = 0;
  let peakQueued = 0;
  const started = performance.now();
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 2000; i++) if (w.write(line)) accepted++;
    peakQueued = Math.max(peakQueued, w.stats().queuedBytes);
    await new Promise((r) => setImmediate(r)); // let batches start (and block)
  }
  const elapsed = performance.now() - started;
  const s = w.stats();
  assert.ok(s.dropped > 0, 'lines were dropped');
  assert.equal(accepted + s.dropped, 80_000, 'every line is either accepted or counted as dropped');
  assert.ok(peakQueued <= maxQueueBytes, `queued ${peakQueued} bytes, bound ${maxQueueBytes}`);
  assert.ok(elapsed < 5000, `80,000 writes took ${elapsed} ms: the caller must not wait for the disk`);
  const closeStarted = performance.now();
  await w.close(300);
  assert.ok(performance.now() - closeStarted < 2000, 'close() gives up on a stuck destination');
  reader.kill('SIGKILL'); // unblocks the pending write with EPIPE
});
