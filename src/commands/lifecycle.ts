/**
 * The process policy of the long-running commands (`serve`, `proxy`), in one place. In: the
 * process's signals and its last-resort error events. Out: `stopped`, which resolves when the
 * command should shut down.
 *
 *  SIGINT, SIGTERM   shut down cleanly, exit 0. Before the command says it is up, exit at once
 *                    (nothing is served yet; start-up may wait for Consul for seconds). A second
 *                    signal while shutting down exits at once with 1.
 *  SIGHUP            `onHangup` (serve: reopen the access-log file after logrotate renamed it).
 *                    A command without one keeps Node's default: the process ends.
 *  SIGUSR1           `onUser1` (proxy: reopen the access-log files, as Envoy does); a command
 *                    without one logs and ignores it. Never Node's default, which opens the
 *                    inspector on 127.0.0.1:9229: a debugger that anyone on the host can attach to
 *                    and run code with.
 *  uncaught exception, unhandled rejection
 *                    logged at `fatal` with the error and its stack, then exit 1 at once, without
 *                    a graceful close: after an error nobody handled, the process state is
 *                    unknown, and serving from it could hand Envoy a wrong config. The supervisor
 *                    restarts the process; Envoy and the TS data plane keep their last config
 *                    meanwhile and reconnect on their own (a kill -9 of the control plane under
 *                    traffic loses no request).
 */
import type { Logger } from '../log.js';

export interface LifecycleOptions {
  /** SIGHUP's job; its failure is logged, the process goes on. */
  readonly onHangup?: () => Promise<void>;
  /** SIGUSR1's job; its failure is logged, the process goes on. */
  readonly onUser1?: () => Promise<void>;
}

export interface Lifecycle {
  /** Resolves with what asked for the shutdown (a signal name, or the reason given to stop()). */
  readonly stopped: Promise<string>;
  /** Start-up is done: from now on SIGINT/SIGTERM resolve `stopped` instead of exiting at once. */
  up(): void;
  /** Ask for a clean shutdown from inside (e.g. the proxy's POST /quitquitquit). */
  stop(reason: string): void;
}

/** A stuck stdout must not keep a process alive that has decided to exit. */
const FLUSH_TIMEOUT_MS = 1000;

/** Installs the policy above; call once per process, as soon as the logger exists. */
export function installLifecycle(logger: Logger, opts: LifecycleOptions = {}): Lifecycle {
  let isUp = false;
  let stopping = false;
  let resolveStopped: (reason: string) => void = () => undefined;
  const stopped = new Promise<string>((resolve) => {
    resolveStopped = resolve;
  });
  const stop = (reason: string) => {
    stopping = true;
    resolveStopped(reason);
  };

  const onStopSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal while shutting down: exiting now');
      exitAfterFlush(logger, 1);
    } else if (!isUp) {
      logger.info({ signal }, 'signal during start-up: exiting');
      exitAfterFlush(logger, 0);
    } else {
      stop(signal);
    }
  };
  process.on('SIGINT', onStopSignal);
  process.on('SIGTERM', onStopSignal);
  // Any listener replaces Node's default action for SIGUSR1 (starting the inspector).
  const user1 = opts.onUser1;
  process.on('SIGUSR1', () => {
    if (!user1) logger.info({ signal: 'SIGUSR1' }, 'SIGUSR1 ignored: no debugger is opened');
    else user1().catch((err: Error) => logger.error({ signal: 'SIGUSR1', err: err.message }, 'SIGUSR1 handling failed'));
  });
  const hangup = opts.onHangup;
  if (hangup) {
    process.on('SIGHUP', () => {
      hangup().catch((err: Error) => logger.error({ signal: 'SIGHUP', err: err.message }, 'SIGHUP handling failed'));
    });
  }

  let dying = false;
  const fatal = (error: unknown, origin: string) => {
    if (dying) return; // a second error while the first one's line is being flushed
    dying = true;
    const err = error instanceof Error ? error : new Error(`non-Error value: ${String(error)}`);
    try {
      logger.fatal({ err, origin }, `${origin}: exiting so that the supervisor restarts consul-xds (Envoy keeps its last config)`);
    } catch {
      process.stderr.write(`consul-xds: ${origin}: ${err.stack ?? err.message}\n`);
    }
    exitAfterFlush(logger, 1);
  };
  process.on('uncaughtException', (err, origin) => fatal(err, origin));
  // Node 20 would turn it into an uncaught exception anyway; a listener makes that independent
  // of --unhandled-rejections.
  process.on('unhandledRejection', (reason) => fatal(reason, 'unhandledRejection'));

  return {
    stopped,
    up: () => {
      isUp = true;
    },
    stop,
  };
}

function exitAfterFlush(logger: Logger, code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), FLUSH_TIMEOUT_MS).unref();
  try {
    logger.flush(() => process.exit(code));
  } catch {
    process.exit(code);
  }
}
