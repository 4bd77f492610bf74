/**
 * Sends real HTTP traffic through an Envoy listener and tallies who answered. In: the listener
 * port on 127.0.0.1, a Host header, a path, a request count. Out: counts per upstream (from the
 * `x-upstream` header the test upstreams set) and per status. Keep-alive connections, a few in
 * flight at once, so a thousand requests take about a second even on a busy 2-core machine.
 * Also a paced background load (`startLoad`) that runs while a test does something else to the
 * system, and counts what failed meanwhile.
 */
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { UPSTREAM_HEADER } from './upstreams.js';

export interface Reply {
  readonly status: number;
  /** Which test upstream answered, or '' when Envoy answered itself (404, 503 no healthy upstream). */
  readonly upstream: string;
  readonly body: string;
  /** The response headers as the client got them. */
  readonly headers: IncomingHttpHeaders;
}

export interface Tally {
  readonly total: number;
  /** Requests per answering upstream ('' = Envoy itself). */
  readonly byUpstream: ReadonlyMap<string, number>;
  readonly byStatus: ReadonlyMap<number, number>;
  /** Share of `total` answered by `upstream`, 0..1. */
  share(upstream: string): number;
  count(upstream: string): number;
  /** "web-api-perl=903 web-api-go=97 | 200=1000", for assertion messages. */
  describe(): string;
}

export interface SendOptions {
  readonly port: number;
  readonly host: string;
  readonly path: string;
  readonly agent?: Agent;
  readonly timeoutMs?: number;
  /** More request headers (a user id, a cookie). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** One request; rejects on a socket error or timeout, resolves with any HTTP status. */
export function send(opts: SendOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: opts.port,
        path: opts.path,
        method: 'GET',
        headers: { ...opts.headers, host: opts.host },
        ...(opts.agent ? { agent: opts.agent } : { agent: false }),
        timeout: opts.timeoutMs ?? 5_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h = res.headers[UPSTREAM_HEADER];
          resolve({
            status: res.statusCode ?? 0,
            upstream: typeof h === 'string' ? h : '',
            body: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to 127.0.0.1:${opts.port}${opts.path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export function tally(replies: readonly Reply[]): Tally {
  const byUpstream = new Map<string, number>();
  const byStatus = new Map<number, number>();
  for (const r of replies) {
    byUpstream.set(r.upstream, (byUpstream.get(r.upstream) ?? 0) + 1);
    byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
  }
  const total = replies.length;
  const count = (u: string): number => byUpstream.get(u) ?? 0;
  return {
    total,
    byUpstream,
    byStatus,
    count,
    share: (u) => (total === 0 ? 0 : count(u) / total),
    describe: () => `${[...byUpstream].map(([u, n]) => `${u || '<envoy>'}=${n}`).join(' ')} | ${[...byStatus].map(([s, n]) => `${s}=${n}`).join(' ')}`,
  };
}

/** Sends `count` requests, `concurrency` at a time over keep-alive connections, and tallies them. */
export async function sendMany(opts: SendOptions & { count: number; concurrency?: number }): Promise<Tally> {
  const concurrency = opts.concurrency ?? 8;
  const agent = opts.agent ?? new Agent({ keepAlive: true, maxSockets: concurrency });
  const replies: Reply[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < opts.count) {
      next++;
      replies.push(await send({ ...opts, agent }));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, opts.count) }, worker));
  } finally {
    if (!opts.agent) agent.destroy();
  }
  return tally(replies);
}

/**
 * Binomial tolerance: how far a count of `n` trials with success probability `p` may stray from
 * n*p before we call the split wrong. `sigmas` standard deviations (sqrt(n p (1-p))); 4 sigma
 * makes a false failure about a 1-in-15,000 event per assertion.
 */
export function binomialBounds(n: number, p: number, sigmas = 4): { low: number; high: number; sd: number } {
  const sd = Math.sqrt(n * p * (1 - p));
  return { low: n * p - sigmas * sd, high: n * p + sigmas * sd, sd };
}

export interface LoadOptions extends SendOptions {
  /** Requests in flight at once (default 2). */
  readonly concurrency?: number;
  /** Pause of each worker between its requests (default 10 ms): a few hundred requests a second at most. */
  readonly pauseMs?: number;
  /** Hard cap on requests, so a forgotten stop() cannot run away (default 20,000). */
  readonly maxRequests?: number;
}

/** A load that runs until stopped. A socket error or timeout counts as a reply with status 0. */
export interface Load {
  /** Requests answered so far (any status). */
  readonly sent: number;
  /** Replies other than 200 so far. */
  readonly failed: number;
  /** The first few of them, for failure messages. */
  readonly failures: readonly Reply[];
  /** Replies since the last mark(), tallied; starts a new window. */
  mark(): Tally;
  /** Stops the workers, waits for requests in flight, and tallies the whole run. */
  stop(): Promise<Tally>;
}

export function startLoad(opts: LoadOptions): Load {
  const concurrency = opts.concurrency ?? 2;
  const pauseMs = opts.pauseMs ?? 10;
  const maxRequests = opts.maxRequests ?? 20_000;
  const agent = opts.agent ?? new Agent({ keepAlive: true, maxSockets: concurrency });
  const replies: Reply[] = [];
  const failures: Reply[] = [];
  let failed = 0;
  let markAt = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && replies.length < maxRequests) {
      const reply = await send({ ...opts, agent }).catch((err: Error): Reply => ({ status: 0, upstream: '', body: err.message, headers: {} }));
      replies.push(reply);
      if (reply.status !== 200 && ++failed <= 10) failures.push(reply);
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const running = Promise.all(Array.from({ length: concurrency }, worker));
  return {
    get sent() {
      return replies.length;
    },
    get failed() {
      return failed;
    },
    failures,
    mark() {
      const window = replies.slice(markAt);
      markAt = replies.length;
      return tally(window);
    },
    async stop() {
      stopped = true;
      await running;
      if (!opts.agent) agent.destroy();
      return tally(replies);
    },
  };
}
