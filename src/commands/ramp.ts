/**
 * `consul-xds ramp start|status|pause|resume|abort`: a canary ramp gated on the fleet's access
 * logs (docs/consul.md, "Canary ramp"). `start` records the ramp in Consul KV and drives it in
 * the foreground (or leaves it to a `serve --ramp-driver` with --detach); `status` prints the
 * recorded state and a live read of the fleet; `pause`/`resume`/`abort` change the recorded state,
 * which whichever driver holds the ramp's lock follows. The work is in src/ramp/.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { ConsulClient } from '../consul/client.js';
import { singleKvKey } from '../consul/options.js';
import { parseConfig } from '../config/parse.js';
import { DEFAULT_VHOST, routeGroups, virtualHosts } from '../config/views.js';
import { ConsulError, ConsulXdsError } from '../errors.js';
import { createLogger } from '../log.js';
import { planWeightEdit, previewKvWrite } from './kv-write.js';
import { parseCommandArgs } from './args.js';
import { CONSUL_FLAGS, CONSUL_USAGE, consulOptions } from './consul-flags.js';
import { installLifecycle } from './lifecycle.js';
import { driveRamp, isTerminal, rollBack } from '../ramp/driver.js';
import { DEFAULT_SIDECAR_SERVICE, figuresOf, readFleet } from '../ramp/fleet.js';
import { RampMetrics } from '../ramp/metrics.js';
import {
  DEFAULT_RAMPS_PREFIX,
  RampSpecSchema,
  parseDurationMs,
  parseRatio,
  rampId,
  rampWeights,
  sha256,
  stepChanges,
  type RampSpec,
  type RampState,
} from '../ramp/spec.js';
import { readRamp, stateKey, updateRamp } from '../ramp/store.js';

const USAGE = `Usage: consul-xds ramp start <prefix> <canary-cluster> [options]
       consul-xds ramp status|pause|resume|abort <prefix> <canary-cluster> [options]

  Steps the canary's weight on a route prefix up to --to, one check-and-set edit of the config in
  Consul KV per step (as 'weights set'), after each step's window passes the gate on the fleet's
  access logs (every sidecar registered with 'serve --register'). A breach rolls the canary back
  to weight 0 at once. The state lives in Consul KV; one driver at a time holds its lock.
  Exit status of a driving start/resume: 0 done or paused (or stopped by SIGINT/SIGTERM),
  3 rolled back or aborted.

start:
  --to N                  final canary weight, percent (default 100)
  --step N                weight added per step (default 10)
  --every DURATION        a step's window (default 30s)
  --max-5xx-ratio R       canary 5xx limit, '1%' or 0.01 (default 1%)
  --max-p99 DURATION      canary p99 limit (default 300ms)
  --min-requests N        requests on the canary a window needs before it can pass (default 200)
  --baseline CLUSTER      the peer it is judged against and takes weight from (default: the one
                          other cluster on the prefix); it gets 100 - the canary's weight
  --min-sidecar-share R   share of registered sidecars that must answer to take a step (default 0.5)
  --sidecar-service NAME  Consul service the sidecars register as (default ${DEFAULT_SIDECAR_SERVICE})
  --vhost NAME            virtual host (default '${DEFAULT_VHOST}', the seed's \`route\`)
  --dry-run               print every step's weights and the first step's diff; write nothing
  --detach                record the ramp and exit: a 'serve --ramp-driver' drives it
resume:                   a paused ramp runs again (the config as it is now is the base of the next
                          step); a running ramp without a driver is driven here
  --detach                as for start
every subcommand:
  --ramps-prefix P        KV prefix of ramp state (default ${DEFAULT_RAMPS_PREFIX})
  --log-level LEVEL       of the driver's log lines (default info)

${CONSUL_USAGE}`;

const FLAGS = {
  ...CONSUL_FLAGS,
  to: { type: 'string' },
  step: { type: 'string' },
  every: { type: 'string' },
  'max-5xx-ratio': { type: 'string' },
  'max-p99': { type: 'string' },
  'min-requests': { type: 'string' },
  baseline: { type: 'string' },
  'min-sidecar-share': { type: 'string' },
  'sidecar-service': { type: 'string' },
  vhost: { type: 'string' },
  'dry-run': { type: 'boolean' },
  detach: { type: 'boolean' },
  'ramps-prefix': { type: 'string' },
  'log-level': { type: 'string' },
} as const;

type Values = ReturnType<typeof parseCommandArgs<typeof FLAGS>>['values'];

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('ramp', argv, FLAGS, USAGE);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [action, prefix, canary] = positionals;
  if (!['start', 'status', 'pause', 'resume', 'abort'].includes(action ?? ''))
    throw new ConsulXdsError('CXDS_USAGE', `ramp: expected start, status, pause, resume or abort${action ? ` (got '${action}')` : ''}\n\n${USAGE}`);
  if (!prefix?.startsWith('/') || !canary || positionals.length !== 3)
    throw new ConsulXdsError('CXDS_USAGE', `ramp ${action}: give <prefix> (starting with '/') and <canary-cluster>\n\n${USAGE}`);
  const opts = consulOptions(values);
  const client = ConsulClient.fromOptions(opts);
  const key = stateKey(values['ramps-prefix'] ?? DEFAULT_RAMPS_PREFIX, rampId(canary, prefix));
  try {
    switch (action) {
      case 'start':
        return await start(client, key, specFrom(values, singleKvKey(opts, 'ramp start'), prefix, canary), values);
      case 'status':
        return await status(client, key);
      case 'pause':
        await change(client, key, 'pause');
        return 0;
      case 'resume':
        await change(client, key, 'resume');
        return values.detach ? 0 : await drive(client, key, values);
      default:
        await abort(client, key, values);
        return 0;
    }
  } finally {
    client.close();
  }
}

function intFlag(flag: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConsulXdsError('CXDS_USAGE', `--${flag}: expected an integer ${min}-${max}, got '${text}'`);
  return n;
}

function specFrom(values: Values, configKey: string, prefix: string, canary: string): Omit<RampSpec, 'baseline'> & { baseline?: string } {
  const share = values['min-sidecar-share'] === undefined ? 0.5 : parseRatio('min-sidecar-share', values['min-sidecar-share']);
  const spec = {
    configKey,
    prefix,
    ...(values.vhost !== undefined ? { vhost: values.vhost } : {}),
    canary,
    to: intFlag('to', values.to, 100, 1, 100),
    step: intFlag('step', values.step, 10, 1, 100),
    everyMs: parseDurationMs('every', values.every ?? '30s'),
    max5xxRatio: parseRatio('max-5xx-ratio', values['max-5xx-ratio'] ?? '1%'),
    maxP99Ms: parseDurationMs('max-p99', values['max-p99'] ?? '300ms'),
    minRequests: intFlag('min-requests', values['min-requests'], 200, 1, Number.MAX_SAFE_INTEGER),
    minSidecarShare: share,
    sidecarService: values['sidecar-service'] ?? DEFAULT_SIDECAR_SERVICE,
    ...(values.baseline !== undefined ? { baseline: values.baseline } : {}),
  };
  if (spec.everyMs < 1000) throw new ConsulXdsError('CXDS_USAGE', `--every: at least 1s (the access-log counts are per second), got '${values.every}'`);
  return spec;
}

/** The baseline when none was given: the one other cluster routing the prefix. */
function inferBaseline(text: string, source: string, spec: { prefix: string; canary: string; vhost?: string }): string {
  const vhostName = spec.vhost ?? DEFAULT_VHOST;
  const vh = virtualHosts(parseConfig(text, source)).find((v) => v.name === vhostName);
  const group = vh ? routeGroups(vh.vhost).find((g) => g.match.kind === 'prefix' && g.match.value === spec.prefix && g.headers.length === 0) : undefined;
  const others = (group?.members ?? []).map((m) => m.cluster).filter((c) => c !== spec.canary);
  if (others.length !== 1)
    throw new ConsulXdsError(
      'CXDS_USAGE',
      `ramp start: ${source}: virtual host '${vhostName}' prefix "${spec.prefix}" routes ${others.length === 0 ? 'no other cluster' : `several other clusters (${others.join(', ')})`} besides ${spec.canary}; name the peer with --baseline`,
    );
  return others[0]!;
}

async function start(client: ConsulClient, key: string, partial: ReturnType<typeof specFrom>, values: Values): Promise<number> {
  const current = await client.kvGet(partial.configKey);
  if (!current) throw new ConsulError(`consul kv ${partial.configKey}: key not found (put a config first: consul-xds kv put)`);
  const spec = Object.freeze(
    RampSpecSchema.parse({ ...partial, baseline: partial.baseline ?? inferBaseline(current.value, `consul kv ${partial.configKey}`, partial) }),
  );
  if (spec.baseline === spec.canary) throw new ConsulXdsError('CXDS_USAGE', `ramp start: --baseline is the canary itself (${spec.canary})`);
  const weights = rampWeights(spec);
  if (values['dry-run']) {
    // The first step as `weights set --dry-run` shows it (validated as serve would), then the plan.
    const { plan } = await planWeightEdit(
      client,
      spec.configKey,
      spec.prefix,
      stepChanges(spec, weights[0]!),
      spec.vhost !== undefined ? { vhost: spec.vhost } : {},
    );
    process.stdout.write(previewKvWrite(plan));
    const lines = weights.map((w, i) => `  step ${i + 1}: ${spec.canary}=${w} ${spec.baseline}=${100 - w}`);
    process.stdout.write(
      `# Ramp ${spec.canary} on ${spec.prefix} (dry run, nothing written)\n${lines.join('\n')}\n` +
        `  each after a ${spec.everyMs / 1000}s window with >= ${spec.minRequests} canary requests, 5xx <= ${spec.max5xxRatio * 100}%, p99 <= ${spec.maxP99Ms} ms;\n` +
        `  a breach sets ${spec.canary}=0 at once\n`,
    );
    return 0;
  }
  const existing = await readRamp(client, key);
  if (existing && !isTerminal(existing.state.status))
    throw new ConsulXdsError(
      'CXDS_USAGE',
      `ramp start: consul kv ${key}: a ramp of ${spec.canary} on ${spec.prefix} is already ${existing.state.status} (ramp status | abort)`,
    );
  const state: RampState = {
    id: key.slice(key.lastIndexOf('/') + 1),
    spec,
    status: 'running',
    step: 0,
    weight: 0,
    stepStartedAt: Date.now(),
    lastWrite: { index: current.modifyIndex, sha256: sha256(current.value) },
    history: [],
  };
  if (!(await client.kvPut(key, JSON.stringify(state, null, 2), { cas: existing?.index ?? 0 })))
    throw new ConsulXdsError('CXDS_CAS_CONFLICT', `ramp start: consul kv ${key}: another ramp start won; see 'ramp status'`);
  process.stderr.write(`ramp ${state.id}: recorded at consul kv ${key}: ${weights.map((w) => `${w}`).join(' -> ')} % every ${spec.everyMs / 1000}s\n`);
  return values.detach ? 0 : drive(client, key, values);
}

/** Drives the ramp in the foreground until it ends or is paused; SIGINT/SIGTERM stop driving (the ramp stays recorded). */
async function drive(client: ConsulClient, key: string, values: Values): Promise<number> {
  const logger = createLogger({ level: values['log-level'] });
  const life = installLifecycle(logger);
  const controller = new AbortController();
  void life.stopped.then(() => controller.abort());
  life.up();
  const metrics = new RampMetrics(new Registry());
  let final: RampState | undefined;
  while (!controller.signal.aborted) {
    final = await driveRamp(key, { client, logger, metrics }, controller.signal, true);
    // Another driver may hold the lock: follow the recorded state until it ends.
    if (final?.status !== 'running') break;
    await sleep(1000, undefined, { signal: controller.signal }).catch(() => undefined);
  }
  logger.flush();
  if (controller.signal.aborted && final?.status !== 'done') {
    process.stderr.write(`ramp: stopped driving; the ramp stays recorded (${key}): a 'serve --ramp-driver' or 'ramp resume' continues it\n`);
    return 0;
  }
  if (final)
    process.stderr.write(
      `ramp ${final.id}: ${final.status} at step ${final.step} (${final.spec.canary}=${final.weight})${final.reason ? `: ${final.reason}` : ''}\n`,
    );
  return final?.status === 'done' || final?.status === 'paused' ? 0 : final ? 3 : 1;
}

async function status(client: ConsulClient, key: string): Promise<number> {
  const got = await readRamp(client, key);
  if (!got) throw new ConsulError(`consul kv ${key}: no such ramp`);
  const s = got.state;
  const { spec } = s;
  const at = s.step === 0 && s.status === 'running' ? 'no weight written yet' : `${spec.canary}=${s.weight} ${spec.baseline}=${100 - s.weight}`;
  const lines = [`ramp ${s.id}: ${s.status}, step ${s.step} of ${rampWeights(spec).length} (${at}) on ${spec.prefix}`];
  if (s.reason) lines.push(`  reason: ${s.reason}`);
  const seconds = Math.max(1, Math.min(Math.ceil(spec.everyMs / 1000), Math.ceil((Date.now() - s.stepStartedAt) / 1000)));
  const view = await readFleet(client, spec.sidecarService, seconds);
  const fig = (c: string) => {
    const f = figuresOf(view, c);
    return `${c}: ${f.requests} requests, 5xx ${(f.ratio5xx * 100).toFixed(2)}%, p99 ${f.p99Ms ?? '-'} ms`;
  };
  lines.push(`  fleet, last ${seconds}s (${view.answered} of ${view.sidecars.length} sidecars answered): ${fig(spec.canary)}; ${fig(spec.baseline)}`);
  for (const sc of view.sidecars) if (sc.error !== undefined) lines.push(`  not answering: ${sc.id} (${sc.admin || 'no admin address'}): ${sc.error}`);
  for (const h of s.history) lines.push(`  ${h.at} ${h.event} step ${h.step} weight ${h.weight}${h.reason ? `: ${h.reason}` : ''}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

async function change(client: ConsulClient, key: string, what: 'pause' | 'resume'): Promise<void> {
  const at = new Date().toISOString();
  let base: { index: number; sha256: string } | undefined;
  if (what === 'resume') {
    const got = await readRamp(client, key);
    const cur = got ? await client.kvGet(got.state.spec.configKey) : undefined;
    // Resuming accepts the config as it is now (a hand edit included) as the base of the next step.
    if (cur) base = { index: cur.modifyIndex, sha256: sha256(cur.value) };
  }
  const s = await updateRamp(client, key, (st) => {
    // Resuming a running ramp changes nothing: it drives it here if no other driver holds it.
    if (what === 'resume' && st.status === 'running') return undefined;
    if (what === 'pause' ? st.status !== 'running' : st.status !== 'paused') {
      throw new ConsulXdsError('CXDS_USAGE', `ramp ${what}: consul kv ${key}: the ramp is ${st.status}`);
    }
    return what === 'pause'
      ? {
          ...st,
          status: 'paused',
          reason: 'paused by hand',
          history: [...st.history, { at, event: 'paused', step: st.step, weight: st.weight, reason: 'by hand' }],
        }
      : {
          ...st,
          status: 'running',
          reason: undefined,
          stepStartedAt: Date.now(),
          ...(base ? { lastWrite: base } : {}),
          history: [...st.history, { at, event: 'resumed', step: st.step, weight: st.weight }],
        };
  });
  process.stderr.write(`ramp ${s.id}: ${s.status} at step ${s.step} (${s.spec.canary}=${s.weight})\n`);
}

async function abort(client: ConsulClient, key: string, values: Values): Promise<void> {
  const got = await readRamp(client, key);
  if (!got) throw new ConsulError(`consul kv ${key}: no such ramp`);
  if (isTerminal(got.state.status)) throw new ConsulXdsError('CXDS_USAGE', `ramp abort: consul kv ${key}: the ramp is already ${got.state.status}`);
  const logger = createLogger({ level: values['log-level'] });
  const s = await rollBack(client, key, got.state, logger, { event: 'aborted', reason: 'aborted by hand' }, 'aborted');
  logger.flush();
  process.stderr.write(`ramp ${s.id}: aborted; ${s.spec.canary}=0 on ${s.spec.prefix}\n`);
}
