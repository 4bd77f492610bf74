/**
 * Messages between the benchmark driver (scripts/bench-fanout.ts) and its load generator children
 * (load-generator.ts), over Node's fork() IPC channel.
 *
 * Time: every stamp is milliseconds since `baseNs`, a reading of process.hrtime.bigint() taken
 * by the driver and sent in `start`. On Linux process.hrtime reads CLOCK_MONOTONIC, one kernel
 * clock shared by every process on the machine (the Go peer reads the same clock), so stamps
 * from different processes compare directly with sub-microsecond resolution; Date.now() would
 * give whole milliseconds, too coarse for sub-100 ms latencies. The driver checks the claim at
 * start: the child's reading when the start message arrives must lie between the driver's
 * readings when it sent the message and when the child's answer came back (however long the
 * child took to load, which a fixed bound on the gap mistook for a clock difference).
 */

/** SotW: StreamAggregatedResources; delta: DeltaAggregatedResources (incremental xDS). */
export type Protocol = 'sotw' | 'delta';

export interface StartMessage {
  readonly kind: 'start';
  readonly port: number;
  readonly protocol: Protocol;
  readonly clients: number;
  /** Index of this process's first client (node ids are unique across load-generator processes). */
  readonly firstClient: number;
  /** Decimal string of the driver's process.hrtime.bigint() origin. */
  readonly baseNs: string;
  /** At most this many clients connecting (not yet holding the initial snapshot) at once. */
  readonly connectConcurrency: number;
  /** Give up on the initial snapshot after this long. */
  readonly readyTimeoutMs: number;
}

/**
 * What a change carries for one type: its new type version (a SotW client waits for it in
 * version_info) and the resources whose content changed (a Delta client waits for each of them,
 * since Delta has no per-type version).
 */
export interface Expectation {
  readonly version: string;
  readonly names: readonly string[];
}

/** The next change: which types will change, to what. */
export interface ArmMessage {
  readonly kind: 'arm';
  readonly change: number;
  readonly expect: Readonly<Record<string, Expectation>>;
  readonly timeoutMs: number;
}

/** Ask for the running totals of what the clients received (bytes per change = the difference). */
export interface TallyMessage {
  readonly kind: 'tally';
}

export interface StopMessage {
  readonly kind: 'stop';
}

export type ToLoadGenerator = StartMessage | ArmMessage | TallyMessage | StopMessage;

export interface StartedMessage {
  readonly kind: 'started';
  /** The child's clock (ms since base) when the start message arrived. */
  readonly receivedMs: number;
}

export interface ReadyMessage {
  readonly kind: 'ready';
  readonly clients: number;
  /** When the last client had ACKed all four types (ms since base). */
  readonly readyAtMs: number;
  /** Versions per type held by every client; 'mixed' where clients disagree ('' for Delta). */
  readonly versions: Readonly<Record<string, string>>;
  /** Resources per type held by every client; -1 where clients disagree. */
  readonly counts: Readonly<Record<string, number>>;
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

export interface TalliedMessage {
  readonly kind: 'tally';
  /** gRPC message bytes (the encoded responses, without HTTP/2 framing) all clients received so far. */
  readonly bytes: number;
  readonly responses: number;
}

/** The server answered the stream with UNIMPLEMENTED: it does not serve this protocol. */
export interface UnsupportedMessage {
  readonly kind: 'unsupported';
  /** grpc-status and grpc-message, e.g. "UNIMPLEMENTED". */
  readonly status: string;
  readonly message: string;
}

export interface ErrorMessage {
  readonly kind: 'error';
  readonly message: string;
}

export type FromLoadGenerator = StartedMessage | ReadyMessage | ArmedMessage | ChangeMessage | TalliedMessage | UnsupportedMessage | ErrorMessage;
