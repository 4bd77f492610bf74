/**
 * Access-log sinks shared by all listeners. In: a listener's AccessLogModels. Out: one function
 * that takes a finished request's LogRecord and hands it to each configured logger: files and
 * stdout/stderr (formatted lines, one bounded writer per path) and gRPC ALS streams (one per sink
 * cluster and log name). Nothing is allocated per request when a listener logs nothing.
 *
 * A slow or stuck destination never holds up traffic or grows memory: file lines go through the
 * sidecar's AccessLogWriter (non-blocking writes, at most FILE_QUEUE_BYTES queued per path, the
 * rest dropped and counted), ALS streams have their own bounds (grpc-access-log.ts).
 *
 * reopen() (SIGUSR1, as Envoy's): each file opens its configured path afresh, so logrotate may
 * rename a file and the lines after the signal land in a new one; none is lost or repeated.
 */
import type { Logger } from '../../log.js';
import { AccessLogWriter } from '../../common/access-log-writer.js';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { AccessLogModel } from '../config/access-log-resource.js';
import type { LogRecord } from './formatter.js';
import { AlsStream } from './grpc-access-log.js';
import type { NodeModel } from '../config/bootstrap.js';
import type { StatEmitter } from '../stats.js';

export type LogFn = (r: LogRecord) => void;

/** Log text one file path may hold in memory while its destination is slow; the rest is dropped. */
const FILE_QUEUE_BYTES = 8 * 1024 * 1024;
/** How long shutdown waits for queued lines to reach a slow destination. */
const FILE_CLOSE_WAIT_MS = 1000;
const STD_FDS: Readonly<Record<string, number>> = { '/dev/stdout': 1, '/dev/stderr': 2 };

export class AccessLogService {
  private readonly files = new Map<string, AccessLogWriter>();
  private readonly grpc = new Map<string, AlsStream>();

  constructor(
    private readonly clusters: ClusterManager,
    private readonly node: NodeModel,
    private readonly logger: Logger,
  ) {}

  /** A logger for `models`, or undefined when there are none (the hot path then skips logging). */
  compile(models: readonly AccessLogModel[], kind: 'http' | 'tcp'): LogFn | undefined {
    if (models.length === 0) return undefined;
    const fns: LogFn[] = models.map((m) => {
      if (m.kind === 'file') {
        const sink = this.file(m.path);
        const format = m.format;
        return (r) => sink.write(format(r));
      }
      const key = `${kind}\u0000${m.cluster}\u0000${m.logName}`;
      let stream = this.grpc.get(key);
      if (!stream) {
        stream = new AlsStream(m, kind, this.clusters, this.node);
        this.grpc.set(key, stream);
      }
      const s = stream;
      return (r) => s.log(r);
    });
    const [only] = fns;
    return fns.length === 1 && only
      ? only
      : (r) => {
          for (const f of fns) f(r);
        };
  }

  private file(path: string): AccessLogWriter {
    let writer = this.files.get(path);
    if (writer) return writer;
    const logger = this.logger.child({ accessLog: path });
    const fd = STD_FDS[path];
    writer = new AccessLogWriter({ ...(fd !== undefined ? { fd } : { file: path }), maxQueueBytes: FILE_QUEUE_BYTES, logger });
    // Until the file opens (a FIFO waits for its reader) lines queue, bounded as always.
    writer.open().catch((err: Error) => logger.error({ err: err.message }, 'cannot open access log file; its lines are dropped'));
    this.files.set(path, writer);
    return writer;
  }

  /** Reopens every file (stdout/stderr: nothing to do). A path that cannot be opened is logged; its lines keep going to the old file. */
  async reopen(): Promise<void> {
    await Promise.all([...this.files.values()].map((w) => w.reopen()));
  }

  /**
   * Envoy's gRPC access-logger counters (access_logs.grpc_access_log.*) and, under access_log.*,
   * what Envoy has no name for: file-log counters and the memory both kinds hold right now.
   */
  emitStats(emit: StatEmitter): void {
    const als = { written: 0, dropped: 0, streams: 0, entries: 0, bytes: 0 };
    for (const s of this.grpc.values()) {
      als.written += s.stats.written;
      als.dropped += s.stats.dropped;
      als.streams += s.stats.streams;
      const b = s.buffered();
      als.entries += b.entries;
      als.bytes += b.bytes;
    }
    emit('access_logs.grpc_access_log.logs_written', als.written);
    emit('access_logs.grpc_access_log.logs_dropped', als.dropped);
    emit('access_log.grpc.streams_total', als.streams);
    emit('access_log.grpc.buffered_entries', als.entries);
    emit('access_log.grpc.buffered_bytes', als.bytes);
    const file = { written: 0, dropped: 0, failed: 0, queued: 0 };
    for (const w of this.files.values()) {
      const s = w.stats();
      file.written += s.written;
      file.dropped += s.dropped;
      file.failed += s.writeErrors;
      file.queued += s.queuedBytes;
    }
    emit('access_log.file.logs_written', file.written);
    emit('access_log.file.logs_dropped', file.dropped);
    emit('access_log.file.write_failed', file.failed);
    emit('access_log.file.buffered_bytes', file.queued);
  }

  async close(): Promise<void> {
    for (const s of this.grpc.values()) s.close();
    this.grpc.clear();
    const files = [...this.files.values()];
    this.files.clear();
    await Promise.all(files.map((f) => f.close(FILE_CLOSE_WAIT_MS)));
  }
}
