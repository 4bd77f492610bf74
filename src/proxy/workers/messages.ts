/**
 * What the primary and its workers say to each other with --concurrency > 1 (node:cluster IPC,
 * 'advanced' serialization, so resource bytes travel as Uint8Array). The primary holds the one
 * ADS stream and forwards each update as the control plane's bytes; every worker decodes and
 * validates them itself and answers with what it refused (any refusal is the NACK) and the
 * EDS/RDS names it now needs.
 */
import type { XdsTypeUrl } from '../../xds/resource-types.js';
import type { ApplyError } from '../xds/ads-client.js';

/** What the primary asks a worker to render from its own state (admin endpoints). */
export type WorkerQuery = 'stats' | 'clusters' | 'clusters-json' | 'listeners' | 'listeners-json' | 'warm';

export type ToWorker =
  | {
      readonly t: 'update';
      readonly id: number;
      readonly typeUrl: XdsTypeUrl;
      readonly version: string;
      readonly upserts: ReadonlyArray<{ readonly name: string; readonly bytes: Uint8Array }>;
      readonly removals: readonly string[];
    }
  | { readonly t: 'dne'; readonly typeUrl: XdsTypeUrl; readonly name: string }
  | { readonly t: 'answered'; readonly typeUrl: XdsTypeUrl }
  | { readonly t: 'health'; readonly cluster: string; readonly host: string; readonly failed: boolean }
  | { readonly t: 'ask'; readonly id: number; readonly what: WorkerQuery }
  /** Reopen the file access logs; answered once done. */
  | { readonly t: 'reopen'; readonly id: number }
  | { readonly t: 'drain' | 'close' };

export type FromWorker =
  | { readonly t: 'ready' }
  | { readonly t: 'live' }
  | {
      readonly t: 'applied';
      readonly id: number;
      readonly errors: readonly ApplyError[];
      /** Names to subscribe to after this update (undefined: the worker never asked). */
      readonly eds: readonly string[] | undefined;
      readonly rds: readonly string[] | undefined;
    }
  | { readonly t: 'answer'; readonly id: number; readonly value: unknown }
  | { readonly t: 'health'; readonly cluster: string; readonly host: string; readonly failed: boolean };

/** Environment variable that tells a forked process its worker slot (0 runs the health checks). */
export const WORKER_INDEX_ENV = 'CONSUL_XDS_WORKER_INDEX';

/** How long a worker has to exit once told to close (or once its primary is gone) before it is killed / exits itself. */
export const EXIT_WAIT_MS = 5_000;
