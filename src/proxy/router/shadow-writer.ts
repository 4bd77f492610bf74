/**
 * Request mirroring (RouteAction.request_mirror_policies). In: the route's mirror policies, the
 * request head already rewritten for the primary cluster, and the request body as it streams.
 * Out: for each policy whose runtime_fraction samples this request, a fire-and-forget copy sent
 * to the mirror cluster with `-shadow` appended to the host part of the authority (as Envoy
 * does, unless disable_shadow_host_suffix_append). The shadow's response is read and dropped;
 * its failures never touch the client's request. Stats land on the mirror cluster.
 */
import type { MirrorModel } from '../config/route-resource.js';
import type { ClusterManager } from '../upstream/cluster-manager.js';
import type { UpstreamCluster } from '../upstream/cluster.js';
import type { Host } from '../upstream/host.js';
import type { HeaderMap, UpstreamCallbacks, UpstreamRequest } from '../upstream/conn-pool.js';

/** A shadow gives up on bodies larger than this (Envoy buffers shadow bodies too). */
const MAX_SHADOW_BUFFER = 1 << 20;

/** `host:port` -> `host-shadow:port`; IPv6 `[::1]:80` -> `[::1]-shadow:80`. */
export function shadowAuthority(authority: string): string {
  const close = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  if (colon > close && colon > 0) return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
  return `${authority}-shadow`;
}

export function sampled(m: MirrorModel): boolean {
  const f = m.fraction;
  return f.numerator >= f.denominator || Math.random() * f.denominator < f.numerator;
}

export class ShadowRequest implements UpstreamCallbacks {
  private upstream: UpstreamRequest | undefined;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private buffered = 0;

  private constructor(
    private readonly cluster: UpstreamCluster,
    private readonly host: Host,
  ) {}

  /** Starts a shadow of the request, or returns undefined (cluster unknown, no host, overflow). */
  static start(
    clusters: ClusterManager,
    policy: MirrorModel,
    method: string,
    path: string,
    authority: string,
    headers: HeaderMap,
    hasBody: boolean,
    timeoutMs: number,
  ): ShadowRequest | undefined {
    const cluster = clusters.get(policy.cluster);
    if (!cluster || cluster.overflow(false)) return undefined;
    const host = cluster.pick(undefined);
    if (!host) {
      cluster.stats.upstream_cx_none_healthy++;
      return undefined;
    }
    const shadowHost = policy.disableSuffix ? authority : shadowAuthority(authority);
    const h: HeaderMap = { ...headers };
    if (cluster.model.http2) {
      h[':method'] = method;
      h[':path'] = path;
      h[':authority'] = shadowHost;
      h[':scheme'] ??= 'http';
      delete h.host;
    } else {
      for (const k of Object.keys(h)) if (k.charCodeAt(0) === 58) delete h[k];
      h.host = shadowHost;
    }
    const s = new ShadowRequest(cluster, host);
    cluster.stats.upstream_rq_total++;
    cluster.stats.upstream_rq_active++;
    host.rqActive++;
    host.rqTotal++;
    s.upstream = cluster.request(host, method, path, h, hasBody, s);
    if (timeoutMs > 0) {
      s.timer = setTimeout(() => {
        cluster.stats.upstream_rq_timeout++;
        s.finish(504);
      }, timeoutMs);
    }
    return s;
  }

  write(chunk: Buffer): void {
    if (this.done) return;
    this.buffered += chunk.length;
    if (this.buffered > MAX_SHADOW_BUFFER) {
      this.finish(0);
      return;
    }
    this.upstream?.write(chunk);
  }

  end(): void {
    if (!this.done) this.upstream?.end();
  }

  private finish(status: number): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.upstream?.abort();
    const stats = this.cluster.stats;
    stats.upstream_rq_active--;
    stats.upstream_rq_completed++;
    this.host.rqActive--;
    if (status > 0) {
      stats.rq.add(status);
      if (status < 500) this.host.rqSuccess++;
      else this.host.rqError++;
    } else this.host.rqError++;
  }

  private status = 0;

  onUpstreamHeaders(status: number, _headers: HeaderMap, endStream: boolean): void {
    this.status = status;
    if (endStream) this.finish(status);
  }

  onUpstreamData(): void {
    // Dropped: nobody waits for a shadow's response.
  }

  onUpstreamTrailers(): void {}

  onUpstreamEnd(): void {
    this.finish(this.status);
  }

  onUpstreamError(): void {
    this.finish(this.status || 503);
  }
}
