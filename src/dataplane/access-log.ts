/**
 * Access-log sinks shared by all listeners. In: a listener's AccessLogModels. Out: one function
 * that takes a finished request's LogRecord and hands it to each configured logger: files and
 * stdout/stderr (formatted lines, one write stream per path) and gRPC ALS streams (one per sink
 * cluster and log name). Nothing is allocated per request when a listener logs nothing.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { ClusterManager } from './cluster-manager.js';
import type { AccessLogModel } from './access-log-config.js';
import type { LogRecord } from './access-log-format.js';
import { AlsStream } from './als-client.js';
import type { NodeModel } from './bootstrap.js';

export type LogFn = (r: LogRecord) => void;

interface LineSink {
  write(line: string): void;
}

export class AccessLogService {
  private readonly files = new Map<string, LineSink & { close(): void }>();
  private readonly grpc = new Map<string, AlsStream>();

  constructor(
    private readonly clusters: ClusterManager,
    private readonly node: NodeModel,
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
    return fns.length === 1 && only ? only : (r) => {
      for (const f of fns) f(r);
    };
  }

  private file(path: string): LineSink {
    let sink = this.files.get(path);
    if (sink) return sink;
    if (path === '/dev/stdout' || path === '/dev/stderr') {
      const out = path === '/dev/stdout' ? process.stdout : process.stderr;
      sink = { write: (line) => void out.write(line), close: () => undefined };
    } else {
      const ws: WriteStream = createWriteStream(path, { flags: 'a' });
      ws.on('error', () => undefined);
      sink = { write: (line) => void ws.write(line), close: () => ws.end() };
    }
    this.files.set(path, sink);
    return sink;
  }

  alsStats(): { written: number; dropped: number; streams: number } {
    const total = { written: 0, dropped: 0, streams: 0 };
    for (const s of this.grpc.values()) {
      total.written += s.stats.written;
      total.dropped += s.stats.dropped;
      total.streams += s.stats.streams;
    }
    return total;
  }

  close(): void {
    for (const s of this.grpc.values()) s.close();
    for (const f of this.files.values()) f.close();
    this.grpc.clear();
    this.files.clear();
  }
}
