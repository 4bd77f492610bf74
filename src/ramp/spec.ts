/**
 * A canary ramp's spec and recorded state, as stored in Consul KV (one JSON value per ramp under
 * the ramps prefix, default `consul-xds/ramps/`). In: `ramp start` flags, or the stored JSON. Out:
 * frozen, validated values; the steps a spec takes; the ramp's id and keys.
 *
 * The state is the ramp's whole memory: whichever driver holds the lock continues from it, so a
 * step is recorded `pending` before its config write and committed after (driver.ts reconciles a
 * pending step a dead driver left behind: written or not, it is taken exactly once).
 */
import { z } from 'zod';
import { createHash } from 'node:crypto';
import { parseDuration } from '../config/duration.js';
import { ConsulXdsError } from '../errors.js';

export const DEFAULT_RAMPS_PREFIX = 'consul-xds/ramps/';

export const RampSpecSchema = z.strictObject({
  /** KV key of the YAML config the steps edit. */
  configKey: z.string().min(1),
  prefix: z.string().startsWith('/'),
  vhost: z.string().min(1).optional(),
  canary: z.string().min(1),
  /** The peer the canary is judged against; it gets 100 - the canary's weight. */
  baseline: z.string().min(1),
  to: z.number().int().min(1).max(100),
  step: z.number().int().min(1).max(100),
  everyMs: z.number().int().min(1000),
  max5xxRatio: z.number().min(0).max(1),
  maxP99Ms: z.number().positive(),
  minRequests: z.number().int().min(1),
  /** Share of registered sidecars that must answer before a step is taken. */
  minSidecarShare: z.number().min(0).max(1),
  /** Consul service the sidecars register as. */
  sidecarService: z.string().min(1),
});
export type RampSpec = z.infer<typeof RampSpecSchema>;

export const RAMP_STATUSES = ['running', 'paused', 'rolled-back', 'done', 'aborted'] as const;
export type RampStatus = (typeof RAMP_STATUSES)[number];

const FiguresSchema = z.strictObject({
  requests: z.number(),
  errors5xx: z.number(),
  ratio5xx: z.number(),
  p99Ms: z.number().optional(),
});
export type Figures = z.infer<typeof FiguresSchema>;

const HistoryEntrySchema = z.strictObject({
  at: z.string(),
  /** step: a weight written; breach: the rollback; paused/resumed/aborted/done: status changes. */
  event: z.enum(['step', 'breach', 'paused', 'resumed', 'aborted', 'done']),
  step: z.number().int(),
  weight: z.number().int(),
  reason: z.string().optional(),
  windowSeconds: z.number().optional(),
  canary: FiguresSchema.optional(),
  baseline: FiguresSchema.optional(),
});
export type HistoryEntry = z.infer<typeof HistoryEntrySchema>;

/** What the ramp last wrote to the config key: a later read that differs is somebody else's edit. */
const WriteMarkSchema = z.strictObject({ index: z.number().int().nonnegative(), sha256: z.string() });
export type WriteMark = z.infer<typeof WriteMarkSchema>;

export const RampStateSchema = z.strictObject({
  id: z.string().min(1),
  spec: RampSpecSchema,
  status: z.enum(RAMP_STATUSES),
  /** Steps taken (0: none yet); the canary's weight is `weight`. */
  step: z.number().int().nonnegative(),
  weight: z.number().int().min(0).max(100),
  /** When the current step's weight was written (epoch ms): its window starts here. */
  stepStartedAt: z.number(),
  lastWrite: WriteMarkSchema,
  /** A step recorded before its config write and not yet committed. */
  pending: z.strictObject({ step: z.number().int(), weight: z.number().int(), sha256: z.string(), fromIndex: z.number().int() }).optional(),
  reason: z.string().optional(),
  history: z.array(HistoryEntrySchema),
});
export type RampState = z.infer<typeof RampStateSchema>;

/** The canary weights a spec steps through: step, 2*step, ... up to `to` (the last one clamped). */
export function rampWeights(spec: Pick<RampSpec, 'step' | 'to'>): number[] {
  const out: number[] = [];
  for (let w = spec.step; w < spec.to; w += spec.step) out.push(w);
  out.push(spec.to);
  return out;
}

/** The weights one step writes: the canary's, and the rest of 100 to the baseline. */
export function stepChanges(spec: Pick<RampSpec, 'canary' | 'baseline'>, weight: number): { cluster: string; weight: number }[] {
  return [
    { cluster: spec.canary, weight },
    { cluster: spec.baseline, weight: 100 - weight },
  ];
}

/** `api` for `/api` on `web-api-go`: `web-api-go_api`; safe as a KV key segment. */
export function rampId(canary: string, prefix: string): string {
  return `${canary}${prefix}`.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/_+$/, '');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** `1%` -> 0.01; a bare number is a ratio (0.01 = 1 %). */
export function parseRatio(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(text.trim());
  const v = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!(v >= 0 && v <= 1)) throw new ConsulXdsError('CXDS_USAGE', `--${flag}: expected a percentage like '1%' or a ratio 0-1, got '${text}'`);
  return v;
}

/** `30s`, `300ms`, `2m` (or bare seconds) -> milliseconds. */
export function parseDurationMs(flag: string, text: string): number {
  const d = parseDuration(text);
  if (!d) throw new ConsulXdsError('CXDS_USAGE', `--${flag}: expected a duration like '30s' or '300ms', got '${text}'`);
  return d.seconds * 1000 + d.nanos / 1e6;
}

export function parseRampState(text: string, key: string): RampState {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConsulXdsError('CXDS_CONFIG_INVALID', `consul kv ${key}: not a ramp state (not JSON)`);
  }
  const r = RampStateSchema.safeParse(json);
  if (!r.success)
    throw new ConsulXdsError('CXDS_CONFIG_INVALID', `consul kv ${key}: not a ramp state: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
  return r.data;
}
