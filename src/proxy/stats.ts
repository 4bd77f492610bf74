/**
 * Envoy-shaped statistics. In: plain numeric fields that the hot path increments (no maps, no
 * string work per request). Out: `name: value` pairs named as Envoy names them
 * (`cluster.<name>.upstream_rq_2xx`, `http.<stat_prefix>.downstream_rq_total`,
 * `listener.<address>_<port>.downstream_cx_total`, ...), built only when /stats is read.
 */

export type StatEmitter = (name: string, value: number) => void;

/** Emits every own numeric field of `obj` as `${prefix}.${field}`. */
export function emitFields(prefix: string, obj: object, emit: StatEmitter): void {
  for (const [k, v] of Object.entries(obj)) if (typeof v === 'number') emit(`${prefix}.${k}`, v);
}

/** Response codes per exact status and per class, as Envoy counts them (…_rq_200, …_rq_2xx). */
export class StatusCounters {
  readonly exact = new Uint32Array(600);
  readonly classes = new Uint32Array(6);

  add(status: number): void {
    if (status >= 100 && status < 600) {
      this.exact[status]!++;
      this.classes[(status / 100) | 0]!++;
    }
  }

  emit(prefix: string, emit: StatEmitter): void {
    for (let c = 1; c <= 5; c++) emit(`${prefix}_${c}xx`, this.classes[c] ?? 0);
    for (let s = 100; s < 600; s++) {
      const n = this.exact[s] ?? 0;
      if (n > 0) emit(`${prefix}_${s}`, n);
    }
  }
}

export class ClusterStats {
  upstream_cx_total = 0;
  upstream_cx_active = 0;
  upstream_cx_connect_fail = 0;
  upstream_cx_connect_timeout = 0;
  upstream_cx_destroy = 0;
  upstream_cx_overflow = 0;
  upstream_cx_none_healthy = 0;
  upstream_cx_rx_bytes_total = 0;
  upstream_cx_tx_bytes_total = 0;
  upstream_rq_total = 0;
  upstream_rq_active = 0;
  upstream_rq_completed = 0;
  upstream_rq_pending_total = 0;
  upstream_rq_pending_active = 0;
  upstream_rq_pending_overflow = 0;
  /** Refused by max_requests (Envoy's name since it split them from pending overflows). */
  upstream_rq_active_overflow = 0;
  upstream_rq_timeout = 0;
  upstream_rq_per_try_timeout = 0;
  upstream_rq_rx_reset = 0;
  upstream_rq_tx_reset = 0;
  upstream_rq_cancelled = 0;
  upstream_rq_retry = 0;
  upstream_rq_retry_success = 0;
  upstream_rq_retry_overflow = 0;
  upstream_rq_retry_limit_exceeded = 0;
  lb_healthy_panic = 0;
  membership_change = 0;
  membership_healthy = 0;
  membership_degraded = 0;
  membership_excluded = 0;
  membership_total = 0;
  update_success = 0;
  update_empty = 0;
  update_no_rebuild = 0;
  readonly rq = new StatusCounters();
  readonly health_check = { attempt: 0, success: 0, failure: 0, network_failure: 0, verify_cluster: 0, healthy: 0 };
  readonly outlier_detection = {
    ejections_active: 0,
    ejections_total: 0,
    ejections_overflow: 0,
    ejections_enforced_total: 0,
    ejections_enforced_consecutive_5xx: 0,
    ejections_detected_consecutive_5xx: 0,
    ejections_enforced_consecutive_gateway_failure: 0,
    ejections_detected_consecutive_gateway_failure: 0,
    ejections_enforced_success_rate: 0,
    ejections_detected_success_rate: 0,
    ejections_enforced_failure_percentage: 0,
    ejections_detected_failure_percentage: 0,
  };

  emit(name: string, emit: StatEmitter, breakers: { cx: boolean; pending: boolean; rq: boolean; retry: boolean }): void {
    const p = `cluster.${name}`;
    emitFields(p, this, emit);
    this.rq.emit(`${p}.upstream_rq`, emit);
    emitFields(`${p}.health_check`, this.health_check, emit);
    emitFields(`${p}.outlier_detection`, this.outlier_detection, emit);
    emit(`${p}.circuit_breakers.default.cx_open`, breakers.cx ? 1 : 0);
    emit(`${p}.circuit_breakers.default.rq_pending_open`, breakers.pending ? 1 : 0);
    emit(`${p}.circuit_breakers.default.rq_open`, breakers.rq ? 1 : 0);
    emit(`${p}.circuit_breakers.default.rq_retry_open`, breakers.retry ? 1 : 0);
  }
}

export class HttpConnManagerStats {
  downstream_cx_total = 0;
  downstream_cx_active = 0;
  downstream_cx_http1_total = 0;
  downstream_cx_http2_total = 0;
  downstream_cx_http1_active = 0;
  downstream_cx_http2_active = 0;
  downstream_cx_destroy = 0;
  downstream_cx_idle_timeout = 0;
  downstream_rq_total = 0;
  downstream_rq_active = 0;
  downstream_rq_http1_total = 0;
  downstream_rq_http2_total = 0;
  downstream_rq_timeout = 0;
  downstream_rq_header_timeout = 0;
  downstream_rq_idle_timeout = 0;
  downstream_rq_rx_reset = 0;
  downstream_rq_tx_reset = 0;
  /** HTTP/2 connections closed for resetting most of their streams at once (rapid reset). */
  downstream_rq_too_many_premature_resets = 0;
  no_route = 0;
  no_cluster = 0;
  rq_direct_response = 0;
  rq_redirect = 0;
  rq_total = 0;
  readonly rq = new StatusCounters();

  emit(prefix: string, emit: StatEmitter): void {
    const p = `http.${prefix}`;
    emitFields(p, this, emit);
    this.rq.emit(`${p}.downstream_rq`, emit);
  }
}

export class TcpProxyStats {
  downstream_cx_total = 0;
  downstream_cx_no_route = 0;
  downstream_cx_rx_bytes_total = 0;
  downstream_cx_tx_bytes_total = 0;
  downstream_flow_control_paused_reading_total = 0;
  idle_timeout = 0;
  upstream_flush_total = 0;

  emit(prefix: string, emit: StatEmitter): void {
    emitFields(`tcp.${prefix}`, this, emit);
  }
}

/** envoy.filters.network.connection_limit: connection_limit.<stat_prefix>.* */
export class ConnectionLimitStats {
  active_connections = 0;
  limited_connections = 0;

  emit(prefix: string, emit: StatEmitter): void {
    emitFields(`connection_limit.${prefix}`, this, emit);
  }
}

export class ListenerStats {
  downstream_cx_total = 0;
  downstream_cx_active = 0;
  downstream_cx_destroy = 0;
  /** Closed at accept: the proxy-wide cap (--max-downstream-connections) was reached. */
  downstream_global_cx_overflow = 0;
  /** Closed (or, with continue_on_listener_filters_timeout, handed to HTTP/1) by the protocol-sniff timeout. */
  downstream_pre_cx_timeout = 0;
  /** TLS listeners: listener.<address>_<port>.ssl.* (handshakes done, and failed or refused ones). */
  readonly ssl = new SslStats();

  emit(address: string, port: number, emit: StatEmitter): void {
    emitFields(`listener.${address}_${port}`, this, emit);
    emitFields(`listener.${address}_${port}.ssl`, this.ssl, emit);
  }
}

/** Envoy's TLS counters of one listener: handshakes done, and refused ones by reason. */
export class SslStats {
  handshake = 0;
  /** The handshake itself failed (protocol error, timeout). */
  connection_error = 0;
  /** A required client certificate was not presented. */
  fail_verify_no_cert = 0;
  /** The client certificate does not chain to the trusted CA. */
  fail_verify_error = 0;
  /** It does, but its SANs match no match_typed_subject_alt_names entry. */
  fail_verify_san = 0;
}

/** Envoy's update counters for one xDS type (cluster_manager.cds.*, listener_manager.lds.*, ...). */
export class XdsTypeStats {
  update_attempt = 0;
  update_success = 0;
  update_rejected = 0;
  update_failure = 0;
  update_empty = 0;
  init_fetch_timeout = 0;
  version_text = '';

  emit(prefix: string, emit: StatEmitter): void {
    emitFields(prefix, this, emit);
  }
}
