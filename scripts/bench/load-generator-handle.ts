/**
 * The driver's side of the load generator: forks load-generator.js, and turns its IPC reports
 * into promises. In: a server port, N, the versions each change will carry. Out: the initial
 * "ready" report and one ChangeMessage per change. Any client error rejects what is pending.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ArmMessage, ChangeMessage, FromLoadGenerator, ReadyMessage, ToLoadGenerator } from './ipc.js';

const SCRIPT = fileURLToPath(new URL('./load-generator.js', import.meta.url));

/** The initial snapshot is tiny next to a change; this only guards against a stuck server. */
const READY_TIMEOUT_MS = 120_000;

/** Allowed gap between the driver's clock and the child's (IPC latency; see ipc.ts). */
const MAX_CLOCK_SKEW_MS = 1_000;

export class LoadGenerator {
  readonly #child: ChildProcess;
  readonly #baseNs: bigint;
  #waiter?: { kind: FromLoadGenerator['kind']; resolve: (m: FromLoadGenerator) => void; reject: (e: Error) => void };
  /** Reports that came before anyone waited for them (a peer's change can finish before its reply). */
  readonly #inbox: FromLoadGenerator[] = [];
  #failure?: Error;

  constructor(baseNs: bigint) {
    this.#baseNs = baseNs;
    // execArgv: [] so a profiled driver (--cpu-prof) does not profile the clients too.
    this.#child = fork(SCRIPT, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (m: FromLoadGenerator) => this.#onMessage(m));
    this.#child.on('exit', (code, signal) => {
      if (code !== 0 || signal !== null) this.#fail(new Error(`load generator exited (${signal ?? code})`));
    });
  }

  /** Connect N clients to 127.0.0.1:port; resolves once each holds and has ACKed all four types. */
  async start(port: number, clients: number, connectConcurrency: number): Promise<ReadyMessage> {
    const started = this.#next('started');
    this.#send({
      kind: 'start',
      port,
      clients,
      baseNs: this.#baseNs.toString(),
      sentMs: Number(process.hrtime.bigint() - this.#baseNs) / 1e6,
      connectConcurrency,
      readyTimeoutMs: READY_TIMEOUT_MS,
    });
    const s = await started;
    if (s.kind !== 'started') throw new Error(`load generator: expected started, got ${s.kind}`);
    if (!(s.clockSkewMs >= 0 && s.clockSkewMs < MAX_CLOCK_SKEW_MS)) {
      throw new Error(`load generator clock is ${s.clockSkewMs.toFixed(3)} ms off the driver's: process.hrtime is not a shared monotonic clock here`);
    }
    const ready = await this.#next('ready');
    if (ready.kind !== 'ready') throw new Error(`load generator: expected ready, got ${ready.kind}`);
    return ready;
  }

  /** Tell the clients which versions the next change carries; resolves once they listen for them. */
  async arm(change: number, expect: ArmMessage['expect'], timeoutMs: number): Promise<void> {
    const armed = this.#next('armed');
    this.#send({ kind: 'arm', change, expect, timeoutMs });
    await armed;
  }

  /** Resolves with the change report (every client has it, or the arm timeout passed). */
  async change(): Promise<ChangeMessage> {
    const m = await this.#next('change');
    if (m.kind !== 'change') throw new Error(`load generator: expected change, got ${m.kind}`);
    return m;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    if (this.#child.connected) this.#send({ kind: 'stop' });
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  #send(m: ToLoadGenerator): void {
    this.#child.send(m);
  }

  #next(kind: FromLoadGenerator['kind']): Promise<FromLoadGenerator> {
    if (this.#failure) return Promise.reject(this.#failure);
    const i = this.#inbox.findIndex((m) => m.kind === kind);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0] as FromLoadGenerator);
    return new Promise((resolve, reject) => {
      this.#waiter = { kind, resolve, reject };
    });
  }

  #onMessage(m: FromLoadGenerator): void {
    if (m.kind === 'error') {
      this.#fail(new Error(`load generator: ${m.message}`));
      return;
    }
    const w = this.#waiter;
    if (w && w.kind === m.kind) {
      this.#waiter = undefined;
      w.resolve(m);
    } else {
      this.#inbox.push(m);
    }
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(this.#failure);
  }
}
