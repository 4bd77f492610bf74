/**
 * Every process the data-plane benchmark starts, so that none outlives it. In: commands to run.
 * Out: long-running children (upstreams, our proxy) that are up once they print a ready line,
 * one-shot runs with a hard time limit (the load generators), and cleanup: stopAll() on the
 * normal path, SIGKILL to whatever is left when this process exits for any reason (hard timeout,
 * Ctrl-C, a thrown error). Our own Node children also exit when their stdin closes, which
 * happens when this process dies, even by SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Child {
  readonly name: string;
  readonly pid: number;
  /** The regular expression match of the ready line. */
  readonly ready: RegExpExecArray;
  /** Last lines the child printed (stdout and stderr), for error messages. */
  tail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

const TAIL_CHARS = 4000;

function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

export class ChildSet {
  private readonly live = new Set<ChildProcess>();
  /** Processes started elsewhere (Envoy by its harness): pid and their own stop (which also removes their files). */
  private readonly adopted = new Map<number, () => Promise<void>>();

  constructor() {
    process.once('exit', () => this.killAllNow());
  }

  /**
   * A process started elsewhere (e.g. Envoy by its harness): stopAll() calls its `stop`, and it is
   * SIGKILLed at exit. Returns a function that forgets it again (after a normal stop).
   */
  adopt(pid: number, stop: () => Promise<void>): () => void {
    this.adopted.set(pid, stop);
    return () => this.adopted.delete(pid);
  }

  /**
   * Starts a long-running child and waits until a line of its stdout or stderr matches `ready`.
   * Rejects (and kills the child) if it exits first or `timeoutMs` passes.
   */
  start(name: string, command: string, args: readonly string[], ready: RegExp, timeoutMs = 30_000): Promise<Child> {
    const proc = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.track(proc);
    let out = '';
    const remember = (chunk: Buffer): void => {
      out = (out + chunk.toString('utf8')).slice(-TAIL_CHARS);
    };
    const stop = async (graceMs = 5000): Promise<void> => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const killer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        await exited(proc);
        clearTimeout(killer);
      }
      proc.stdin?.destroy();
    };
    return new Promise<Child>((resolve, reject) => {
      let settled = false;
      const fail = (why: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        void stop(0).then(() => reject(new Error(`${name}: ${why}\n--- its output ---\n${out}`)));
      };
      const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
      const onChunk = (chunk: Buffer): void => {
        remember(chunk);
        if (settled) return;
        for (const line of out.split('\n')) {
          const m = ready.exec(line);
          if (!m) continue;
          settled = true;
          clearTimeout(timer);
          resolve({ name, pid: proc.pid ?? -1, ready: m, tail: () => out, stop });
          return;
        }
      };
      proc.stdout?.on('data', onChunk);
      proc.stderr?.on('data', onChunk);
      proc.once('error', (err) => fail(`could not start ${command}: ${err.message}`));
      proc.once('exit', (code, signal) => fail(`exited before it was ready (code ${code}, signal ${signal})`));
    });
  }

  /** Runs a command to completion, killing it after `timeoutMs` (the result says so). */
  run(command: string, args: readonly string[], timeoutMs: number): Promise<RunResult> {
    const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.track(proc);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    proc.stdout?.on('data', (c: Buffer) => stdout.push(c));
    proc.stderr?.on('data', (c: Buffer) => stderr.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill('SIGKILL');
    }, timeoutMs);
    return new Promise((resolve, reject) => {
      proc.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`could not run ${command}: ${err.message}`));
      });
      proc.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), timedOut });
      });
    });
  }

  /** Stops every child still running (SIGTERM, SIGKILL after the grace time). */
  async stopAll(graceMs = 3000): Promise<void> {
    await Promise.all(
      [...this.live].map(async (proc) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        proc.kill('SIGTERM');
        const killer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        await exited(proc);
        clearTimeout(killer);
      }),
    );
    const adopted = [...this.adopted.values()];
    this.adopted.clear();
    await Promise.all(adopted.map((stop) => stop().catch(() => undefined)));
  }

  private track(proc: ChildProcess): void {
    this.live.add(proc);
    proc.once('exit', () => this.live.delete(proc));
  }

  private killAllNow(): void {
    for (const proc of this.live) proc.kill('SIGKILL');
    for (const pid of this.adopted.keys()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
