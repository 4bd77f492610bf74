/**
 * The bounded access-log writer: lines reach the file in order (small and huge lines, multi-byte
 * characters); with a stuck destination (a FIFO whose reader never reads: the pipe fills and
 * stays full, like a hung disk) the queue stays within its bound, new lines are dropped and
 * counted, the caller is never blocked, and close() does not hang. reopen() (SIGHUP after
 * logrotate renamed the file) moves the following lines to a new file at the configured path,
 * losing and repeating none, and keeps the old file when the path cannot be opened.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { AccessLogWriter } from '../../../src/common/access-log-writer.js';
import { silentLogger } from '../../../src/log.js';
import { captureLog } from '../../support/log-capture.js';

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
  lines.forEach((l, i) => {
    assert.equal((JSON.parse(l) as { i: number }).i, i);
  });
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

test('chunks fill to their end (multi-byte lines cut at a chunk end go whole to the next), and one string of several lines counts them all', async () => {
  // Not opened yet, so nothing is written: every line stays queued, within 4 KiB (4 chunks of 1 KiB).
  const file = path.join(dir, 'fill.log');
  const w = new AccessLogWriter({ file, logger: silentLogger, maxQueueBytes: 4096 });
  const ascii = `${'x'.repeat(299)}\n`; // 300 bytes: 3 per chunk, where the worst case (900) allowed 1
  for (let i = 0; i < 12; i++) assert.equal(w.write(ascii), true, `line ${i} accepted`);
  assert.equal(w.write(ascii), false, 'the 13th line is over the bound');
  await w.open();
  await w.close();
  assert.equal(fs.readFileSync(file, 'utf8'), ascii.repeat(12));
  assert.deepEqual([w.stats().written, w.stats().dropped], [12, 1]);

  const multi = path.join(dir, 'fill-multi.log');
  const m = new AccessLogWriter({ file: multi, logger: silentLogger, maxQueueBytes: 4096 });
  const snowmen = `${'☃'.repeat(100)}\n`; // 301 bytes from 101 UTF-16 units: the 4th would be cut at a chunk's end
  const three = `{"a":1}\n{"b":2}\n{"c":3}\n`;
  // Three fill 903 bytes of the first chunk; the fourth fits its 121 left in UTF-16 units, not in bytes.
  const texts = [snowmen, snowmen, snowmen, snowmen, three, snowmen, snowmen, snowmen, snowmen, three];
  for (const [i, text] of texts.entries()) assert.equal(m.write(text, text === three ? 3 : 1), true, `write ${i} accepted`);
  await m.open();
  await m.close();
  assert.equal(fs.readFileSync(multi, 'utf8'), texts.join(''));
  assert.equal(m.stats().written, 8 + 2 * 3);
});

test('bytes (writeBytes) go in order with strings, count their lines, and are dropped whole at the bound', async () => {
  // Not opened yet, so nothing is written: everything stays queued, within 4 KiB (4 chunks of 1 KiB).
  const file = path.join(dir, 'bytes.log');
  const w = new AccessLogWriter({ file, logger: silentLogger, maxQueueBytes: 4096 });
  const two = Buffer.from(`xx{"a":"ü☃"}\n{"b":${'9'.repeat(280)}}\nyy`);
  const expected: string[] = [];
  for (let i = 0; i < 12; i++) {
    if (i % 3 === 2) {
      assert.equal(w.write(`{"i":${i}}\n`), true, `string ${i} accepted`);
      expected.push(`{"i":${i}}\n`);
    } else {
      assert.equal(w.writeBytes(two, 2, two.length - 2, 2), true, `bytes ${i} accepted`);
      expected.push(two.toString('utf8', 2, two.length - 2));
    }
  }
  const big = Buffer.alloc(2000, 0x78);
  assert.equal(w.writeBytes(big, 0, big.length, 5), false, 'over the bound: all five lines dropped');
  assert.equal(w.writeBytes(two, 2, two.length - 2, 2), true, 'a smaller write still fits within the bound');
  expected.push(two.toString('utf8', 2, two.length - 2));
  await w.open();
  await w.close();
  assert.equal(fs.readFileSync(file, 'utf8'), expected.join(''));
  assert.deepEqual([w.stats().written, w.stats().dropped], [8 * 2 + 4 + 2, 5]);
  assert.equal(w.writeBytes(two, 0, 2, 1), false, 'a closed writer refuses bytes');
  assert.equal(w.stats().dropped, 6);
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
  // The FIFO's fd number is free now, and one of the next files opened takes it: the write that
  // was retrying must not land in that file.
  const next = Array.from({ length: 32 }, (_, k) => path.join(dir, `after-stuck-${k}.log`));
  const fds = next.map((f) => fs.openSync(f, 'a'));
  await new Promise((r) => setTimeout(r, 100));
  for (const fd of fds) fs.closeSync(fd);
  for (const f of next) assert.equal(fs.readFileSync(f, 'utf8'), '', `nothing written through a closed fd number (${f})`);
  reader.kill('SIGKILL');
});

test('reopen after logrotate renamed the file: later lines in the new file, none lost or repeated', async () => {
  const file = path.join(dir, 'rotated.log');
  const w = new AccessLogWriter({ file, logger: silentLogger, maxQueueBytes: 64 * 1024 * 1024 });
  await w.open();
  const rotated: string[] = [];
  let i = 0;
  const writeSome = (n: number) => {
    for (const end = i + n; i < end; i++) assert.equal(w.write(`{"i":${i}}\n`), true);
  };
  for (let round = 0; round < 5; round++) {
    writeSome(20_000);
    await new Promise((r) => setImmediate(r)); // a batch is on its way to the file being renamed
    const to = `${file}.${round}`;
    fs.renameSync(file, to);
    rotated.push(to);
    writeSome(1000); // queued while the path has no file: these belong in the new one
    await w.reopen();
    assert.ok(fs.existsSync(file), `round ${round}: a new file at the configured path`);
  }
  const afterLast = i;
  writeSome(500);
  await w.close();
  const read = (f: string) =>
    fs
      .readFileSync(f, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { i: number }).i);
  const all = [...rotated, file].flatMap(read);
  assert.equal(all.length, i, 'every line once');
  all.forEach((n, k) => {
    assert.equal(n, k, 'in order across the files');
  });
  const current = read(file);
  assert.ok(current.length >= 500 && current.at(-1) === i - 1 && current.includes(afterLast), 'lines after the last reopen are in the new file');
  for (const f of rotated) assert.ok(read(f).length > 0, `${f} kept the lines written before its rename`);
  assert.equal(w.stats().written, i);
});

test('reopen when the path cannot be opened: logged, lines keep going to the old file', async () => {
  const sub = path.join(dir, 'gone');
  fs.mkdirSync(sub);
  const log = captureLog();
  const w = new AccessLogWriter({ file: path.join(sub, 'access.log'), logger: log.logger });
  await w.open();
  w.write('before\n');
  await w.flush();
  fs.renameSync(sub, `${sub}.old`); // the configured folder is gone
  await w.reopen();
  w.write('after\n');
  await w.close();
  assert.equal(fs.readFileSync(path.join(`${sub}.old`, 'access.log'), 'utf8'), 'before\nafter\n');
  const err = log.atLeast(50).find((r) => r.msg?.startsWith('access log could not be reopened'));
  assert.match(String(err?.err), /ENOENT/);
});
