/**
 * Bounded, non-blocking writer for access-log lines. In: finished JSON lines from the ALS sink.
 * Out: the same lines appended to a file or to stdout, in order, in large batched writes.
 *
 * Why a bounded queue that drops: the ALS sink must never wait for the disk. If it did, a slow
 * or stuck disk would stop us reading Envoy's gRPC stream; HTTP/2 flow control would then push
 * back into Envoy, which buffers and finally drops entries on its side where nobody counts them
 * for us - and while we waited, an unbounded queue here would grow with the traffic. So:
 *
 *  - Lines wait in a queue of at most `maxQueueBytes` characters. One batch at a time is being
 *    written (fs.write on libuv's thread pool, so the event loop never blocks on the disk), so
 *    the log text held in memory never exceeds 2 x maxQueueBytes (default 2 x 8 MiB).
 *  - When a new line does not fit, it is dropped (drop-newest: the lines already queued are
 *    older and keep their order), counted in `dropped`, and a warning is logged at most every
 *    10 s with the count. The live aggregates still count dropped entries: only the line is lost.
 *  - A write error is logged, counted in `writeErrors`, and its batch is dropped (counted too);
 *    the writer keeps going so the sink stays up (a full disk recovers when space returns).
 */
import fs from 'node:fs';
import type { Logger } from '../log.js';

export interface AccessLogWriterOptions {
  /** File to append to; when absent, lines go to `fd` (default 1 = stdout). */
  readonly file?: string;
  readonly fd?: number;
  /** Queue bound in characters of log text (default 8 MiB). */
  readonly maxQueueBytes?: number;
  readonly logger: Logger;
}

export interface AccessLogWriterStats {
  readonly written: number;
  readonly dropped: number;
  readonly writeErrors: number;
  /** Characters queued plus characters in the batch being written. */
  readonly queuedBytes: number;
  readonly maxQueueBytes: number;
}

const DROP_WARN_INTERVAL_MS = 10_000;

export class AccessLogWriter {
  private readonly logger: Logger;
  private readonly maxQueueBytes: number;
  private readonly file?: string;
  private fd: number | undefined;
  private handle?: fs.promises.FileHandle;
  private opening?: Promise<void>;
  private queue: string[] = [];
  private queueChars = 0;
  private inFlightChars = 0;
  private inFlightLines = 0;
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
    this.file = opts.file;
    if (opts.file === undefined) this.fd = opts.fd ?? 1;
  }

  /** Opens the file (append, created if missing). Resolves when lines can be written. */
  open(): Promise<void> {
    if (this.fd !== undefined) return Promise.resolve();
    this.opening ??= fs.promises.open(this.file!, 'a').then((h) => {
      // Keep the raw fd: fs.write on it is the cheapest async write Node offers.
      this.fd = h.fd;
      this.handle = h;
      this.kick();
    });
    return this.opening;
  }

  /** Queue one line. Returns false when it was dropped because the queue is full. */
  write(line: string): boolean {
    if (this.closed || this.queueChars + line.length > this.maxQueueBytes) {
      this.drop(1);
      return false;
    }
    this.queue.push(line);
    this.queueChars += line.length;
    if (!this.writing) this.kick();
    return true;
  }

  stats(): AccessLogWriterStats {
    return {
      written: this.written,
      dropped: this.dropped,
      writeErrors: this.writeErrors,
      queuedBytes: this.queueChars + this.inFlightChars,
      maxQueueBytes: this.maxQueueBytes,
    };
  }

  /** Resolves when everything queued so far has been written (or failed). */
  flush(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
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
      this.drop(this.queue.length);
      this.queue = [];
      this.queueChars = 0;
    }
    clearTimeout(timer);
    this.reportDrops(true);
    if (this.handle) await this.handle.close();
    this.handle = undefined;
  }

  private kick(): void {
    if (this.writing || this.fd === undefined) return;
    if (this.queue.length === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    this.writing = true;
    // Let the lines of the current tick gather first: one write per event-loop turn, not per line.
    setImmediate(() => this.writeBatch());
  }

  private writeBatch(): void {
    const lines = this.queue;
    this.queue = [];
    this.inFlightChars = this.queueChars;
    this.inFlightLines = lines.length;
    this.queueChars = 0;
    this.writeAll(Buffer.from(lines.join(''), 'utf8'), 0);
  }

  private writeAll(buf: Buffer, offset: number): void {
    fs.write(this.fd!, buf, offset, buf.length - offset, null, (err, n) => {
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          // A non-blocking pipe is full: try again shortly, without spinning.
          setTimeout(() => this.writeAll(buf, offset), 5).unref();
          return;
        }
        this.writeErrors++;
        this.logger.error({ err: err.message, file: this.file ?? `fd ${this.fd}` }, 'access log write failed; batch dropped');
        this.drop(this.inFlightLines);
        this.batchDone(false);
        return;
      }
      if (offset + n < buf.length) {
        this.writeAll(buf, offset + n); // partial write (pipes): the rest follows
        return;
      }
      this.batchDone(true);
    });
  }

  private batchDone(ok: boolean): void {
    if (ok) this.written += this.inFlightLines;
    this.inFlightChars = 0;
    this.inFlightLines = 0;
    this.writing = false;
    this.reportDrops(false);
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
