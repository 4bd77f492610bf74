/**
 * Messages between the benchmark driver (scripts/bench-fanout.ts) and its load generator child
 * (load-generator.ts), over Node's fork() IPC channel.
 *
 * Time: every stamp is milliseconds since `baseNs`, a reading of process.hrtime.bigint() taken
 * by the driver and sent in `start`. On Linux process.hrtime reads CLOCK_MONOTONIC, one kernel
 * clock shared by every process on the machine (the Go peer reads the same clock), so stamps
 * from different processes compare directly with sub-microsecond resolution; Date.now() would
 * give whole milliseconds, too coarse for sub-100 ms latencies. The child checks the claim at
 * start: its reading of the driver's send stamp must be a little later than that stamp.
 */

export interface StartMessage {
  readonly kind: 'start';
  readonly port: number;
  readonly clients: number;
  /** Decimal string of the driver's process.hrtime.bigint() origin. */
  readonly baseNs: string;
  /** The driver's clock when it sent this message (ms since baseNs). */
  readonly sentMs: number;
  /** At most this many clients connecting (not yet holding the initial snapshot) at once. */
  readonly connectConcurrency: number;
  /** Give up on the initial snapshot after this long. */
  readonly readyTimeoutMs: number;
}

/** The next change: which types will get which new version. */
export interface ArmMessage {
  readonly kind: 'arm';
  readonly change: number;
  readonly expect: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
}

export interface StopMessage {
  readonly kind: 'stop';
}

export type ToLoadGenerator = StartMessage | ArmMessage | StopMessage;

export interface StartedMessage {
  readonly kind: 'started';
  /** Child's clock minus the driver's send stamp; IPC latency, so small and >= 0. */
  readonly clockSkewMs: number;
}

export interface ReadyMessage {
  readonly kind: 'ready';
  readonly clients: number;
  /** When the last client had ACKed all four types (ms since base). */
  readonly readyAtMs: number;
  /** Versions per type held by every client; 'mixed' where clients disagree. */
  readonly versions: Readonly<Record<string, string>>;
}

export interface ArmedMessage {
  readonly kind: 'armed';
  readonly change: number;
}

export interface ChangeMessage {
  readonly kind: 'change';
  readonly change: number;
  /** Per type, per client: when the expected version arrived (ms since base); null if it never did. */
  readonly received: Readonly<Record<string, ReadonlyArray<number | null>>>;
  /** Per client: when it had ACKed every expected type (ms since base); null if it never did. */
  readonly acked: ReadonlyArray<number | null>;
  /** Clients that did not get every expected type before the timeout. */
  readonly missing: number;
  /** Responses of any type the clients received while armed (pushes the change caused). */
  readonly responses: number;
  /** CPU the load generator used from arm to report (user + system, ms). */
  readonly cpuMs: number;
}

export interface ErrorMessage {
  readonly kind: 'error';
  readonly message: string;
}

export type FromLoadGenerator = StartedMessage | ReadyMessage | ArmedMessage | ChangeMessage | ErrorMessage;
