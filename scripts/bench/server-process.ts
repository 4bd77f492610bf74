/**
 * A control plane under test, as a child process the driver talks to over stdin/stdout, one JSON
 * object per line. Ours (scripts/bench/our-server.ts), the Go peer and the TS floor peer all
 * speak it, so each is measured the same way: its own process, its own RSS, its own event loop.
 *
 * In (stdin):  {"op":"prepare","config":"<yaml>"}                                    (ours)
 *              {"op":"prepare","versions":{typeUrl: version},"resources":{typeUrl: [base64 Any]}} (peers)
 *              {"op":"publish"}   {"op":"gc"}
 *              {"op":"profile-start"}   {"op":"profile-stop","path":"<file>"}           (ours only)
 * Out (stdout): {"op":"listening","port":N}, {"op":"prepare"},
 *              {"op":"publish","publishNs":"T","blockMs":B?}, {"op":"gc"}, {"op":"profile-start"},
 *              {"op":"profile-stop"}
 *
 * `prepare` builds the next snapshot and holds it (ours: parse, translate, encode each resource
 * once; Go: unmarshal into its typed messages; floor: decode), outside every measurement: that is
 * the config pipeline's cost, not the fan-out's. `publish` hands it to the server's cache;
 * `publishNs` is the server's CLOCK_MONOTONIC reading (process.hrtime in Node) just before, and
 * `blockMs` (ours) how long the cache's synchronous fan-out held the event loop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface PeerSnapshot {
  readonly versions: Readonly<Record<string, string>>;
  /** Per type URL: each resource as an encoded google.protobuf.Any, base64. */
  readonly resources: Readonly<Record<string, readonly string[]>>;
}

/** What ours is given: the config text, taken through parse, translate and buildSnapshot. */
export interface ConfigSnapshot {
  readonly config: string;
}

export type PrepareCommand = { readonly op: 'prepare' } & (PeerSnapshot | ConfigSnapshot);

export type ServerCommand =
  | PrepareCommand
  | { readonly op: 'publish' }
  | { readonly op: 'gc' }
  | { readonly op: 'profile-start' }
  | { readonly op: 'profile-stop'; readonly path: string };

export type ServerReply =
  | { readonly op: 'listening'; readonly port: number }
  | { readonly op: 'prepare' }
  | { readonly op: 'publish'; readonly publishNs: string; readonly blockMs?: number }
  | { readonly op: 'gc' }
  | { readonly op: 'profile-start' }
  | { readonly op: 'profile-stop' };

export class ServerProcess {
  readonly #child: ChildProcess;
  readonly #waiting: Array<{ op: string; resolve: (r: ServerReply) => void; reject: (e: Error) => void }> = [];
  readonly #stderr: string[] = [];
  #exited?: string;

  private constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
  ) {
    this.#child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines = createInterface({ input: this.#child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => this.#onLine(line));
    this.#child.stderr?.on('data', (d: Buffer) => {
      this.#stderr.push(d.toString());
      if (this.#stderr.length > 50) this.#stderr.shift();
    });
    this.#child.on('exit', (code, signal) => {
      this.#exited = `${name} exited (${signal ?? code}): ${this.#stderr.join('').trim().slice(-2000)}`;
      for (const w of this.#waiting.splice(0)) w.reject(new Error(this.#exited));
    });
  }

  /** Start the server and wait until it listens on 127.0.0.1; resolves with its port. */
  static async start(name: string, command: string, args: readonly string[]): Promise<{ server: ServerProcess; port: number }> {
    const server = new ServerProcess(name, command, args);
    const reply = await server.#expect('listening');
    if (reply.op !== 'listening') throw new Error(`${name}: unexpected reply ${reply.op}`);
    return { server, port: reply.port };
  }

  get pid(): number {
    const pid = this.#child.pid;
    if (pid === undefined) throw new Error(`${this.name} has no pid`);
    return pid;
  }

  /** Have the server build (and hold) its next snapshot. */
  async prepare(snapshot: PeerSnapshot | ConfigSnapshot): Promise<void> {
    await this.#send({ op: 'prepare', ...snapshot });
  }

  /** Publish the prepared snapshot; resolves with the publish stamp (CLOCK_MONOTONIC ns). */
  async publish(): Promise<{ publishNs: bigint; blockMs?: number }> {
    const reply = await this.#send({ op: 'publish' });
    if (reply.op !== 'publish') throw new Error(`${this.name}: unexpected reply ${reply.op}`);
    return { publishNs: BigInt(reply.publishNs), ...(reply.blockMs !== undefined ? { blockMs: reply.blockMs } : {}) };
  }

  /** Ask the server to collect garbage and return free memory, so RSS readings are comparable. */
  async gc(): Promise<void> {
    await this.#send({ op: 'gc' });
  }

  /** CPU profile of the measured changes only (ours: node:inspector); written by profileStop. */
  async profileStart(): Promise<void> {
    await this.#send({ op: 'profile-start' });
  }

  async profileStop(file: string): Promise<void> {
    await this.#send({ op: 'profile-stop', path: file });
  }

  async stop(): Promise<void> {
    if (this.#exited !== undefined) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin?.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  #send(command: ServerCommand): Promise<ServerReply> {
    const reply = this.#expect(command.op);
    this.#child.stdin?.write(`${JSON.stringify(command)}\n`);
    return reply;
  }

  #expect(op: string): Promise<ServerReply> {
    if (this.#exited !== undefined) return Promise.reject(new Error(this.#exited));
    return new Promise((resolve, reject) => this.#waiting.push({ op, resolve, reject }));
  }

  #onLine(line: string): void {
    let reply: ServerReply;
    try {
      reply = JSON.parse(line) as ServerReply;
    } catch {
      return; // not a protocol line (a library printing to stdout); ignore it
    }
    const index = this.#waiting.findIndex((w) => w.op === reply.op);
    const waiter = index >= 0 ? this.#waiting.splice(index, 1)[0] : undefined;
    waiter?.resolve(reply);
  }
}
