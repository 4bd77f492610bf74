/**
 * Bounded, non-blocking writer for access-log lines. In: finished lines from the ALS sink
 * (src/als/sink.ts) and from the proxy's file access logs. Out: the same lines appended to a file
 * or to stdout, in order, in large batched writes.
 *
 * Why a bounded queue that drops: the ALS sink must never wait for the disk. If it did, a slow
 * or stuck disk would stop us reading Envoy's gRPC stream; HTTP/2 flow control would then push
 * back into Envoy, which buffers and finally drops entries on its side where nobody counts them
 * for us - and while we waited, an unbounded queue here would grow with the traffic. So:
 *
 *  - Each line is UTF-8 encoded at once into a fixed-size chunk (Buffer), or copied there when
 *    it comes as bytes already (writeBytes: the ALS sink's lines). Chunks queued, being
 *    filled and being written together never exceed `maxQueueBytes` (default 8 MiB): that is all
 *    the memory log text can ever hold. Writes go out as one writev per event-loop turn on
 *    libuv's thread pool, so the event loop never blocks on the disk.
 *  - When a line does not fit and no new chunk may be allocated, the line is dropped
 *    (drop-newest: the lines already queued are older and keep their order), counted in
 *    `dropped`, and a warning is logged at most every 10 s with the count. The live aggregates
 *    still count dropped entries: only the line is lost.
 *  - A write error is logged, counted in `writeErrors`, and its batch is dropped (counted too);
 *    the writer keeps going so the sink stays up (a full disk recovers when space returns).
 *
 * SIGHUP (logrotate without copytruncate: rename, then signal) calls reopen(): the batch being
 * written ends in the renamed file, every later line goes to a new file at the configured path.
 *
 * Encoding straight into chunks (instead of queueing strings and joining them) also turned out
 * about 4x cheaper per line on this hot path: no joined megabyte string, one copy.
 */
import fs from 'node:fs';
import type { Logger } from '../log.js';

export interface AccessLogWriterOptions {
  /** File to append to; when absent, lines go to `fd` (default 1 = stdout). */
  readonly file?: string;
  readonly fd?: number;
  /** Bound on the memory for log text not yet written, in bytes (default 8 MiB). */
  readonly maxQueueBytes?: number;
  readonly logger: Logger;
}

export interface AccessLogWriterStats {
  readonly written: number;
  readonly dropped: number;
  readonly writeErrors: number;
  /** Bytes of log text queued or being written (<= maxQueueBytes). */
  readonly queuedBytes: number;
  readonly maxQueueBytes: number;
}

const DROP_WARN_INTERVAL_MS = 10_000;
// O_NONBLOCK matters only for a FIFO: a reader that stops reading then makes writes fail with
// EAGAIN (retried) instead of parking a thread-pool thread in write(2), which would also hold up
// process exit. Regular files ignore it.
const OPEN_FLAGS = fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NONBLOCK;
const MAX_CHUNK = 256 * 1024;

/**
 * A stretch [start, fill) of an allocated chunk. The chunk being filled hands its filled part to
 * the writer and keeps filling the space after it, so a quiet period does not cost a fresh
 * chunk per write. `owner` marks the piece whose completion releases the chunk's allocation.
 */
interface Piece {
  readonly buf: Buffer;
  start: number;
  fill: number;
  lines: number;
  owner: boolean;
}

export class AccessLogWriter {
  private readonly logger: Logger;
  private readonly maxQueueBytes: number;
  private readonly chunkSize: number;
  private readonly file?: string;
  private fd: number | undefined;
  private handle?: fs.promises.FileHandle;
  private opening?: Promise<void>;
  /** Opened by reopen(); taken into use between two batches, so no batch is split or repeated. */
  private nextHandle?: fs.promises.FileHandle;
  private swapWaiters: Array<() => void> = [];
  private reopening: Promise<void> = Promise.resolve();
  /** Sealed pieces waiting to be written, oldest first. */
  private queue: Piece[] = [];
  /** The chunk being filled. */
  private current: Piece | undefined;
  /** Sizes of every chunk alive here (queued, current, in flight): the bounded quantity. */
  private allocated = 0;
  private inFlight: Piece[] = [];
  private writing = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private written = 0;
  private dropped = 0;
  private writeErrors = 0;
  private droppedSinceWarn = 0;
  private lastDropWarn = 0;

  constructor(opts: AccessLogWriterOptions) {
    this.logger = opts.logger;
    this.maxQueueBytes = opts.maxQueueBytes ?? 8 * 1024 * 1024;
    // At least four chunks fit the bound, so one can be written while others fill.
    this.chunkSize = Math.max(1024, Math.min(MAX_CHUNK, Math.floor(this.maxQueueBytes / 4)));
    this.file = opts.file;
    if (opts.file === undefined) this.fd = opts.fd ?? 1;
  }

  /**
   * Opens the file (append, created if missing). Resolves when lines can be written. A FIFO
   * with no reader yet is retried every 100 ms (lines queue meanwhile, bounded as always).
   */
  open(): Promise<void> {
    if (this.fd !== undefined) return Promise.resolve();
    this.opening ??= this.openFile();
    return this.opening;
  }

  private async openFile(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const h = await fs.promises.open(this.file!, OPEN_FLAGS);
        // Keep the raw fd: fs.writev on it is the cheapest async write Node offers.
        this.fd = h.fd;
        this.handle = h;
        this.kick();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || this.closed) throw err;
        if (attempt === 0) this.logger.warn({ file: this.file }, 'access log FIFO has no reader yet; waiting for one');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /**
   * Opens the configured path afresh and writes every line not yet being written there (after
   * logrotate renamed the file). Lines already being written end in the old file: none is lost
   * or written twice. If the path cannot be opened, that is logged and lines keep going to the
   * file open before. Nothing to do for stdout/an fd, or before the first open.
   */
  reopen(): Promise<void> {
    this.reopening = this.reopening.then(() => this.reopenFile());
    return this.reopening;
  }

  private async reopenFile(): Promise<void> {
    if (this.file === undefined || this.handle === undefined || this.closed) return;
    let next: fs.promises.FileHandle;
    try {
      next = await fs.promises.open(this.file, OPEN_FLAGS);
    } catch (err) {
      this.logger.error({ file: this.file, err: (err as Error).message }, 'access log could not be reopened; lines keep going to the file open before');
      return;
    }
    if (this.closed) {
      await next.close();
      return;
    }
    await new Promise<void>((resolve) => {
      this.nextHandle = next;
      this.swapWaiters.push(resolve);
      if (!this.writing) this.swap();
    });
    this.logger.info({ file: this.file }, 'access log reopened');
  }

  /** Between batches: the handle reopen() opened replaces the old one. */
  private swap(): void {
    const next = this.nextHandle;
    if (next === undefined) return;
    const old = this.handle;
    this.nextHandle = undefined;
    this.handle = next;
    this.fd = next.fd;
    old?.close().catch((err: Error) => this.logger.warn({ file: this.file, err: err.message }, 'closing the rotated access log failed'));
    for (const w of this.swapWaiters.splice(0)) w();
  }

  /**
   * Queue one line, or `lines` whole lines joined in one string. Returns false when it was
   * dropped, all its lines together, because the queue is full.
   */
  write(line: string, lines = 1): boolean {
    if (this.closed) {
      this.drop(lines);
      return false;
    }
    const c = this.current;
    if (c !== undefined && this.fits(c, line)) {
      this.added(c, lines);
      return true;
    }
    // A UTF-16 code unit never takes more than 3 bytes in UTF-8: a fresh chunk this size always fits.
    const fresh = this.freshChunk(line.length * 3, lines);
    if (fresh === undefined) return false;
    fresh.fill += fresh.buf.write(line, fresh.fill);
    this.added(fresh, lines);
    return true;
  }

  /**
   * Queue `lines` whole lines already encoded as UTF-8 in bytes[start, end) (the ALS sink writes
   * a message's lines as bytes: they are copied, not encoded). Same bound and drops as write().
   */
  writeBytes(bytes: Uint8Array, start: number, end: number, lines: number): boolean {
    if (this.closed) {
      this.drop(lines);
      return false;
    }
    const n = end - start;
    let c = this.current;
    if (c === undefined || c.buf.length - c.fill < n) {
      c = this.freshChunk(n, lines);
      if (c === undefined) return false;
    }
    c.buf.set(bytes.subarray(start, end), c.fill);
    c.fill += n;
    this.added(c, lines);
    return true;
  }

  /**
   * The current chunk is full: seal it and start one of at least `bytes` bytes, or, when that
   * would pass the bound, drop the `lines` lines (drop-newest) and return undefined.
   */
  private freshChunk(bytes: number, lines: number): Piece | undefined {
    const size = Math.max(this.chunkSize, bytes);
    if (this.current !== undefined) this.seal(this.current);
    if (this.allocated + size > this.maxQueueBytes) {
      this.current = undefined;
      this.drop(lines);
      return undefined;
    }
    const c: Piece = { buf: Buffer.allocUnsafe(size), start: 0, fill: 0, lines: 0, owner: true };
    this.current = c;
    this.allocated += size;
    return c;
  }

  private added(c: Piece, lines: number): void {
    c.lines += lines;
    if (!this.writing) this.kick();
  }

  /**
   * Encodes `line` into the rest of chunk `c` if it fits whole (then advances `fill`). Tried
   * before assuming the worst case (3 bytes per UTF-16 unit), so a chunk fills to its end: with
   * the ALS sink's message-sized strings, the worst case left a quarter of each chunk unused.
   */
  private fits(c: Piece, line: string): boolean {
    const room = c.buf.length - c.fill;
    // UTF-8 never takes fewer bytes than UTF-16 units.
    if (room < line.length) return false;
    const n = c.buf.write(line, c.fill);
    // write() stops before a character that does not fit, so a short count means it all fit;
    // near the end only the exact length tells (a cut write is left behind unused).
    if (n < room - 3 || n === Buffer.byteLength(line)) {
      c.fill += n;
      return true;
    }
    return false;
  }

  stats(): AccessLogWriterStats {
    let queued = 0;
    for (const p of this.queue) queued += p.fill - p.start;
    for (const p of this.inFlight) queued += p.fill - p.start;
    return {
      written: this.written,
      dropped: this.dropped,
      writeErrors: this.writeErrors,
      queuedBytes: queued + (this.current ? this.current.fill - this.current.start : 0),
      maxQueueBytes: this.maxQueueBytes,
    };
  }

  /** Resolves when everything queued so far has been written (or failed). */
  flush(): Promise<void> {
    if (!this.writing && !this.pending()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops accepting lines, writes what is queued (waiting at most `timeoutMs`: a stuck disk must
   * not hang shutdown; lines still queued then count as dropped), closes a file we opened.
   */
  async close(timeoutMs = 2000): Promise<void> {
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    if (await Promise.race([this.flush().then(() => false), timedOut])) {
      for (const p of this.takeQueued()) this.drop(p.lines);
    }
    clearTimeout(timer);
    this.reportDrops(true);
    this.swap(); // a reopen() still waiting for the last batch: close the newer handle too
    const h = this.handle;
    this.handle = undefined;
    if (h) {
      // A write still retrying (a stuck FIFO) must stop before the fd number is closed: the next
      // file opened in this process may get the same number.
      this.fd = undefined;
      await h.close();
    }
  }

  private pending(): boolean {
    return this.queue.length > 0 || (this.current !== undefined && this.current.fill > this.current.start);
  }

  /** The full chunk `c` stops being filled: queue what is left of it, or release it. */
  private seal(c: Piece): void {
    if (c.fill > c.start) {
      this.queue.push(c);
      return;
    }
    // Nothing left to write: the allocation ends with the earlier piece of it still in flight,
    // or now if there is none.
    const earlier = this.inFlight.find((p) => p.buf === c.buf);
    if (earlier) earlier.owner = true;
    else this.allocated -= c.buf.length;
  }

  /** Every piece with lines in it, in order; the current chunk keeps filling after its part. */
  private takeQueued(): Piece[] {
    const pieces = this.queue;
    const c = this.current;
    if (c !== undefined && c.fill > c.start) {
      pieces.push({ buf: c.buf, start: c.start, fill: c.fill, lines: c.lines, owner: false });
      c.start = c.fill;
      c.lines = 0;
    }
    this.queue = [];
    return pieces;
  }

  private kick(): void {
    if (this.writing || this.fd === undefined) return;
    if (!this.pending()) {
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    this.writing = true;
    // Let the lines of the current turn gather first: one write per event-loop turn, not per line.
    setImmediate(() => {
      this.inFlight = this.takeQueued();
      this.writeAll(this.inFlight.map((p) => p.buf.subarray(p.start, p.fill)));
    });
  }

  private writeAll(bufs: Buffer[]): void {
    if (this.fd === undefined) {
      this.batchDone(false); // closed while retrying: the batch is dropped, and counted
      return;
    }
    fs.writev(this.fd, bufs, (err, n) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          // A non-blocking pipe is full: try again shortly, without spinning.
          setTimeout(() => this.writeAll(bufs), 5).unref();
          return;
        }
        this.writeErrors++;
        this.logger.error({ err: err.message, file: this.file ?? `fd ${this.fd}` }, 'access log write failed; batch dropped');
        this.batchDone(false);
        return;
      }
      const rest = remainder(bufs, n);
      if (rest.length > 0) {
        this.writeAll(rest); // partial write (pipes): the rest follows
        return;
      }
      this.batchDone(true);
    });
  }

  private batchDone(ok: boolean): void {
    for (const p of this.inFlight) {
      if (ok) this.written += p.lines;
      else this.drop(p.lines);
      if (p.owner) this.allocated -= p.buf.length;
    }
    this.inFlight = [];
    this.writing = false;
    this.reportDrops(false);
    this.swap();
    this.kick();
  }

  private drop(n: number): void {
    this.dropped += n;
    this.droppedSinceWarn += n;
    this.reportDrops(false);
  }

  private reportDrops(force: boolean): void {
    if (this.droppedSinceWarn === 0) return;
    const now = Date.now();
    if (!force && now - this.lastDropWarn < DROP_WARN_INTERVAL_MS) return;
    this.logger.warn(
      { dropped: this.droppedSinceWarn, droppedTotal: this.dropped, maxQueueBytes: this.maxQueueBytes },
      'access log writer is behind: lines dropped (aggregates still count them)',
    );
    this.droppedSinceWarn = 0;
    this.lastDropWarn = now;
  }
}

/** What is left of `bufs` after the first `n` bytes were written. */
function remainder(bufs: Buffer[], n: number): Buffer[] {
  let skip = n;
  const rest: Buffer[] = [];
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    rest.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return rest;
}
