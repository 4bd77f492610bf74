/**
 * One access-log entry as we log and aggregate it, and the identity of the ALS stream it came on.
 * In: filled by decode.ts from Envoy's HTTPAccessLogEntry / TCPAccessLogEntry. Out: read by
 * json-line.ts (one JSON line) and aggregates.ts (live figures). Numbers are plain numbers and
 * durations milliseconds; a string Envoy did not send is ''.
 */

/** The stream identifier (first message of each ALS stream). */
export interface StreamIdentity {
  readonly node: string;
  readonly cluster: string;
  readonly logName: string;
}

export interface AccessRecord {
  readonly kind: 'http' | 'tcp';
  /** Request start, epoch ms (0 when Envoy did not send it). */
  readonly startMs: number;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly protocol: string;
  /** HTTP status, 0 when there was none (TCP, or reset before a response). */
  readonly status: number;
  /** Envoy's route name (translate names each route after its prefix). */
  readonly route: string;
  readonly cluster: string;
  readonly upstreamHost: string;
  readonly downstream: string;
  /** Total duration in ms (Envoy's `duration`, else time to last downstream byte, else 0). */
  readonly durationMs: number;
  /** Time to the first upstream response byte in ms, -1 when there was none. */
  readonly upstreamMs: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Envoy's short response flags (UH, UF, NR, ...) joined with ','; empty when none. */
  readonly flags: string;
  readonly requestId: string;
  readonly userAgent: string;
  /** Envoy's response_code_details (e.g. `via_upstream`, `route_not_found`). */
  readonly details: string;
}
