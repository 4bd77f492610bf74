/**
 * The driver's side of the load generator: forks load-generator.js (one process, or several for
 * thousands of clients: LoadGenerators), and turns their IPC reports into promises. In: a server
 * port, the protocol, N, what each change will carry. Out: the initial "ready" report, one
 * ChangeMessage per change (several processes' reports merged into one, clients in order), and
 * byte tallies. Any client error rejects what is pending; a server that does not serve the
 * protocol rejects with UnsupportedProtocolError.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ArmMessage, ChangeMessage, FromLoadGenerator, Protocol, ReadyMessage, TalliedMessage, ToLoadGenerator } from './ipc.js';

const SCRIPT = fileURLToPath(new URL('./load-generator.js', import.meta.url));

/** The server answered UNIMPLEMENTED: it does not serve this protocol (not a benchmark failure). */
export class UnsupportedProtocolError extends Error {
  constructor(
    readonly status: string,
    detail: string,
  ) {
    super(`${status}${detail ? `: ${detail}` : ''}`);
    this.name = 'UnsupportedProtocolError';
  }
}

/** Bytes and responses all clients of a LoadGenerator(s) received so far. */
export type Tally = Omit<TalliedMessage, 'kind'>;

class LoadGenerator {
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

  /**
   * Connect N clients (node ids from `firstClient` on) to 127.0.0.1:port; resolves once each holds
   * and has ACKed all four types.
   */
  async start(
    port: number,
    protocol: Protocol,
    clients: number,
    firstClient: number,
    connectConcurrency: number,
    readyTimeoutMs: number,
  ): Promise<ReadyMessage> {
    const started = this.#next('started');
    const sentMs = Number(process.hrtime.bigint() - this.#baseNs) / 1e6;
    this.#send({
      kind: 'start',
      port,
      protocol,
      clients,
      firstClient,
      baseNs: this.#baseNs.toString(),
      connectConcurrency,
      readyTimeoutMs,
    });
    const s = await started;
    const answeredMs = Number(process.hrtime.bigint() - this.#baseNs) / 1e6;
    if (s.kind !== 'started') throw new Error(`load generator: expected started, got ${s.kind}`);
    // See ipc.ts: the child's stamp must fall between the driver's send and the answer's arrival.
    if (!(s.receivedMs >= sentMs && s.receivedMs <= answeredMs)) {
      throw new Error(
        `load generator clock read ${s.receivedMs.toFixed(3)} ms, outside the driver's ${sentMs.toFixed(3)}..${answeredMs.toFixed(3)} ms: process.hrtime is not a shared monotonic clock here`,
      );
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

  get pid(): number {
    const pid = this.#child.pid;
    if (pid === undefined) throw new Error('the load generator has no pid');
    return pid;
  }

  /** Running totals of what the clients received. */
  async tally(): Promise<Tally> {
    const reply = this.#next('tally');
    this.#send({ kind: 'tally' });
    const m = await reply;
    if (m.kind !== 'tally') throw new Error(`load generator: expected tally, got ${m.kind}`);
    return { bytes: m.bytes, responses: m.responses };
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
    if (m.kind === 'unsupported') {
      this.#fail(new UnsupportedProtocolError(m.status, m.message));
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

/** Several load-generator ready reports as one: clients in process order. */
export function mergeReady(parts: readonly ReadyMessage[]): ReadyMessage {
  const same = <T>(values: readonly T[], mixed: T): T => (values.every((v) => v === values[0]) ? (values[0] as T) : mixed);
  const types = Object.keys(parts[0]?.versions ?? {});
  return {
    kind: 'ready',
    clients: parts.reduce((n, p) => n + p.clients, 0),
    readyAtMs: Math.max(...parts.map((p) => p.readyAtMs)),
    versions: Object.fromEntries(
      types.map((t) => [
        t,
        same(
          parts.map((p) => p.versions[t] ?? ''),
          'mixed',
        ),
      ]),
    ),
    counts: Object.fromEntries(
      types.map((t) => [
        t,
        same(
          parts.map((p) => p.counts[t] ?? -1),
          -1,
        ),
      ]),
    ),
  };
}

/** Several load-generator reports of one change as one: per-client arrays concatenated in process order. */
export function mergeChange(parts: readonly ChangeMessage[]): ChangeMessage {
  const first = parts[0];
  if (!first) throw new Error('no change reports to merge');
  return {
    kind: 'change',
    change: first.change,
    received: Object.fromEntries(Object.keys(first.received).map((t) => [t, parts.flatMap((p) => p.received[t] ?? [])])),
    acked: parts.flatMap((p) => p.acked),
    missing: parts.reduce((n, p) => n + p.missing, 0),
    responses: parts.reduce((n, p) => n + p.responses, 0),
    cpuMs: parts.reduce((n, p) => n + p.cpuMs, 0),
  };
}

/**
 * N clients spread over several load-generator processes (one event loop cannot keep up with
 * 10,000 streams' responses without its own delay showing in the delivery times), driven as one.
 */
export class LoadGenerators {
  readonly #children: LoadGenerator[];

  constructor(baseNs: bigint, processes: number) {
    this.#children = Array.from({ length: processes }, () => new LoadGenerator(baseNs));
  }

  /** The processes holding the clients' connections. */
  get pids(): number[] {
    return this.#children.map((c) => c.pid);
  }

  async start(port: number, protocol: Protocol, clients: number, connectConcurrency: number, readyTimeoutMs: number): Promise<ReadyMessage> {
    const n = this.#children.length;
    let first = 0;
    const ready = this.#children.map((child, i) => {
      const share = Math.floor(clients / n) + (i < clients % n ? 1 : 0);
      const started = child.start(port, protocol, share, first, Math.ceil(connectConcurrency / n), readyTimeoutMs);
      first += share;
      return started;
    });
    return mergeReady(await Promise.all(ready));
  }

  async arm(change: number, expect: ArmMessage['expect'], timeoutMs: number): Promise<void> {
    await Promise.all(this.#children.map((c) => c.arm(change, expect, timeoutMs)));
  }

  async change(): Promise<ChangeMessage> {
    return mergeChange(await Promise.all(this.#children.map((c) => c.change())));
  }

  async tally(): Promise<Tally> {
    const parts = await Promise.all(this.#children.map((c) => c.tally()));
    return { bytes: parts.reduce((n, p) => n + p.bytes, 0), responses: parts.reduce((n, p) => n + p.responses, 0) };
  }

  async stop(): Promise<void> {
    await Promise.all(this.#children.map((c) => c.stop()));
  }
}
