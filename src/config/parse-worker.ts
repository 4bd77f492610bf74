/**
 * Config parsing for `serve`, off its event loop. In: config texts and their source (file path or
 * `consul kv <key>`). Out: the frozen Config, or the error parseConfig would have thrown, rebuilt
 * as the same class with the same message, so logs, `/status` and metrics read exactly as before.
 *
 * Why: yaml's parser alone costs up to a couple of seconds of CPU for a token-dense text under the
 * size cap, and on the main thread that stalls /health, every xDS stream and the Consul watches.
 * One long-lived worker thread parses one text at a time, in the order they arrive (answers come
 * back in that order, so sources apply them in order). A text still queued when a newer one from
 * the same source arrives through parseLatest is dropped. A parse over the time budget is
 * abandoned (the thread is terminated) and refused naming the source; a thread that dies is
 * replaced and its loss reported the same way. The CLI (validate, kv put) stays in-process.
 */
import { Worker } from 'node:worker_threads';
import { ConfigError, ConfigTooLargeError, ConsulXdsError, type ConfigIssue } from '../errors.js';
import type { Logger } from '../log.js';
import { deepFreeze } from './deep-freeze.js';
import { markValidated } from './validate.js';
import { parseConfig, type ParseOptions } from './parse.js';
import type { Config } from './schema.js';

/** How `serve` turns texts into configs: in the worker (the default), or in-process (CLI, benchmarks, tests). */
export interface ConfigParser {
  /** Resolves or rejects as parseConfig returns or throws. */
  parse(text: string, source: string, opts?: ParseOptions): Promise<Config>;
  /** As parse, but resolves undefined when a newer text from the same source replaced this one before it was parsed. */
  parseLatest(text: string, source: string, opts?: ParseOptions): Promise<Config | undefined>;
  /** Resolves once every text submitted so far is answered and the handlers of the answers have run. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** parseConfig on the calling thread. */
export const inProcessParser: ConfigParser = Object.freeze({
  parse: async (text: string, source: string, opts?: ParseOptions) => parseConfig(text, source, opts),
  parseLatest: async (text: string, source: string, opts?: ParseOptions) => parseConfig(text, source, opts),
  idle: async () => {},
  close: async () => {},
});

/** The parse of a text was abandoned (over the time budget) or lost (the parser thread died); the last good config keeps serving. */
export class ConfigParseAbortedError extends ConsulXdsError {
  readonly source: string;
  constructor(source: string, why: string) {
    super('CXDS_CONFIG_PARSE_ABORTED', `${source}: config not parsed: ${why}`);
    this.source = source;
  }
}

/** Default time budget of one parse; any text under the size cap takes far less (npm run bench:config). */
export const DEFAULT_PARSE_TIMEOUT_MS = 10_000;

export interface WorkerParserOptions {
  readonly logger: Logger;
  /** A parse running longer is abandoned: the thread is terminated and replaced. */
  readonly timeoutMs?: number;
  /** Heap cap of the thread (V8 old generation, MB): a parse that exhausts it kills the thread, not serve. */
  readonly maxHeapMb?: number;
}

/** What crosses to the thread, and back (parse-thread.ts). */
export interface ParseRequest {
  readonly id: number;
  readonly text: string;
  readonly source: string;
  readonly maxBytes?: number;
}
export type WireError =
  | { readonly kind: 'config'; readonly source: string; readonly issues: readonly ConfigIssue[]; readonly total: number }
  | { readonly kind: 'too-large'; readonly source: string; readonly bytes: number; readonly maxBytes: number }
  | { readonly kind: 'other'; readonly code: string; readonly message: string };
export type ParseReply = { readonly ready: true } | { readonly id: number; readonly config: Config } | { readonly id: number; readonly error: WireError };

function rebuild(e: WireError): Error {
  switch (e.kind) {
    case 'config':
      return new ConfigError(e.source, e.issues, e.total);
    case 'too-large':
      return new ConfigTooLargeError(e.source, e.bytes, e.maxBytes);
    default:
      return new ConsulXdsError(e.code, e.message);
  }
}

interface Job {
  readonly request: ParseRequest;
  /** Submitted through parseLatest: a newer text from the same source may replace it while queued. */
  readonly latest: boolean;
  resolve(config: Config | undefined): void;
  reject(err: Error): void;
}

const THREAD = new URL('./parse-thread.js', import.meta.url);

export class WorkerConfigParser implements ConfigParser {
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  private readonly maxHeapMb?: number;
  private worker?: Worker;
  /** The thread has loaded its modules (booting does not count against a text's time budget). */
  private ready = false;
  private queue: Job[] = [];
  private running?: { job: Job; timer?: NodeJS.Timeout };
  private idleWaiters: Array<() => void> = [];
  private nextId = 1;
  private closed = false;

  constructor(opts: WorkerParserOptions) {
    this.logger = opts.logger.child({ component: 'config-parser' });
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_PARSE_TIMEOUT_MS;
    this.maxHeapMb = opts.maxHeapMb;
  }

  parse(text: string, source: string, opts: ParseOptions = {}): Promise<Config> {
    return this.submit(text, source, opts, false) as Promise<Config>;
  }

  parseLatest(text: string, source: string, opts: ParseOptions = {}): Promise<Config | undefined> {
    return this.submit(text, source, opts, true);
  }

  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = [...(this.running ? [this.running.job] : []), ...this.queue.splice(0)];
    if (this.running) clearTimeout(this.running.timer);
    this.running = undefined;
    for (const job of pending) job.reject(new ConfigParseAbortedError(job.request.source, 'serve is shutting down'));
    this.settle();
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private submit(text: string, source: string, opts: ParseOptions, latest: boolean): Promise<Config | undefined> {
    if (this.closed) return Promise.reject(new ConfigParseAbortedError(source, 'serve is shutting down'));
    return new Promise((resolve, reject) => {
      if (latest) {
        const superseded = this.queue.filter((j) => j.latest && j.request.source === source);
        this.queue = this.queue.filter((j) => !superseded.includes(j));
        for (const j of superseded) j.resolve(undefined);
      }
      this.queue.push({ request: { id: this.nextId++, text, source, maxBytes: opts.maxBytes }, latest, resolve, reject });
      this.next();
    });
  }

  /** Sends the next queued text to the thread (starting one if needed) unless one is being parsed. */
  private next(): void {
    if (this.running || this.closed) return;
    const job = this.queue.shift();
    if (!job) {
      this.settle();
      return;
    }
    const worker = this.thread();
    worker.ref();
    this.running = { job };
    if (this.ready) this.startBudget();
    worker.postMessage(job.request);
  }

  private startBudget(): void {
    if (!this.running) return;
    this.running.timer = setTimeout(
      () => this.abandon(`parsing took longer than ${this.timeoutMs} ms; abandoned (the parser thread was restarted)`),
      this.timeoutMs,
    );
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(THREAD, this.maxHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb } } : {});
    let failure: Error | undefined;
    this.ready = false;
    worker.on('message', (reply: ParseReply) => this.answered(reply));
    worker.on('error', (err) => (failure = err));
    worker.on('exit', (exitCode) => {
      if (this.worker !== worker) return; // terminated on purpose (abandon, close)
      this.worker = undefined;
      this.lost(`the parser thread died (${failure?.message ?? `exit code ${exitCode}`}); a new one takes the next text`);
    });
    this.worker = worker;
    return worker;
  }

  private answered(reply: ParseReply): void {
    if ('ready' in reply) {
      this.ready = true;
      this.startBudget();
      return;
    }
    const running = this.running;
    if (!running || running.job.request.id !== reply.id) return;
    clearTimeout(running.timer);
    this.running = undefined;
    this.worker?.unref();
    if ('config' in reply) running.job.resolve(markValidated(deepFreeze(reply.config)));
    else running.job.reject(rebuild(reply.error));
    this.next();
  }

  /** The running parse is over budget: stop the thread (it cannot be interrupted otherwise) and go on with a new one. */
  private abandon(why: string): void {
    const worker = this.worker;
    this.worker = undefined;
    void worker?.terminate();
    this.lost(why);
  }

  private lost(why: string): void {
    const running = this.running;
    this.running = undefined;
    if (running) {
      clearTimeout(running.timer);
      running.job.reject(new ConfigParseAbortedError(running.job.request.source, why));
    } else {
      this.logger.error({ err: why }, 'config parser thread lost while idle; a new one starts with the next text');
    }
    this.next();
  }

  private settle(): void {
    if (this.running || this.queue.length > 0) return;
    // A macrotask later: the answers' promise handlers (apply or report) run first.
    for (const w of this.idleWaiters.splice(0)) setImmediate(w);
  }
}
