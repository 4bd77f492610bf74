/**
 * A peer control plane under test, as a child process the driver talks to over stdin/stdout
 * (one JSON object per line; the Go peer and the TS floor peer speak the same protocol).
 *
 * In (stdin):  {"op":"set","versions":{typeUrl: version},"resources":{typeUrl: [base64 Any]}}
 *              {"op":"gc"}
 * Out (stdout): {"op":"listening","port":N}, {"op":"set","publishNs":"T"}, {"op":"gc"}
 *
 * `publishNs` is the peer's CLOCK_MONOTONIC reading just before it handed the snapshot to its
 * cache, the same point at which the driver stamps our own cache.set().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface PeerSnapshot {
  readonly versions: Readonly<Record<string, string>>;
  /** Per type URL: each resource as an encoded google.protobuf.Any, base64. */
  readonly resources: Readonly<Record<string, readonly string[]>>;
}

export type PeerCommand = ({ readonly op: 'set' } & PeerSnapshot) | { readonly op: 'gc' };

export type PeerReply =
  | { readonly op: 'listening'; readonly port: number }
  | { readonly op: 'set'; readonly publishNs: string }
  | { readonly op: 'gc' };

export class PeerProcess {
  readonly #child: ChildProcess;
  readonly #waiting: Array<{ op: string; resolve: (r: PeerReply) => void; reject: (e: Error) => void }> = [];
  readonly #stderr: string[] = [];
  #exited?: string;

  private constructor(readonly name: string, command: string, args: readonly string[]) {
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

  /** Start the peer and wait until it listens on 127.0.0.1; resolves with its port. */
  static async start(name: string, command: string, args: readonly string[]): Promise<{ peer: PeerProcess; port: number }> {
    const peer = new PeerProcess(name, command, args);
    const reply = await peer.#expect('listening');
    if (reply.op !== 'listening') throw new Error(`${name}: unexpected reply ${reply.op}`);
    return { peer, port: reply.port };
  }

  get pid(): number {
    const pid = this.#child.pid;
    if (pid === undefined) throw new Error(`${this.name} has no pid`);
    return pid;
  }

  /** Hand the peer a snapshot; resolves with its publish stamp (CLOCK_MONOTONIC ns). */
  async set(snapshot: PeerSnapshot): Promise<bigint> {
    const reply = await this.#send({ op: 'set', ...snapshot });
    if (reply.op !== 'set') throw new Error(`${this.name}: unexpected reply ${reply.op}`);
    return BigInt(reply.publishNs);
  }

  /** Ask the peer to collect garbage and return free memory, so RSS readings are comparable. */
  async gc(): Promise<void> {
    await this.#send({ op: 'gc' });
  }

  async stop(): Promise<void> {
    if (this.#exited !== undefined) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin?.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  #send(command: PeerCommand): Promise<PeerReply> {
    const reply = this.#expect(command.op);
    this.#child.stdin?.write(JSON.stringify(command) + '\n');
    return reply;
  }

  #expect(op: string): Promise<PeerReply> {
    if (this.#exited !== undefined) return Promise.reject(new Error(this.#exited));
    return new Promise((resolve, reject) => this.#waiting.push({ op, resolve, reject }));
  }

  #onLine(line: string): void {
    let reply: PeerReply;
    try {
      reply = JSON.parse(line) as PeerReply;
    } catch {
      return; // not a protocol line (a library printing to stdout); ignore it
    }
    const index = this.#waiting.findIndex((w) => w.op === reply.op);
    const waiter = index >= 0 ? this.#waiting.splice(index, 1)[0] : undefined;
    waiter?.resolve(reply);
  }
}
