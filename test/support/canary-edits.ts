/**
 * The edit loop of the make-before-break tests (test/integration/make-before-break-*.test.ts): a
 * YAML config file rewritten over and over, canary weight 20 -> 0 -> 20 and the canary deleted
 * from the file and put back, each edit waited for until serve() holds no stage any more and the
 * watched node has ACKed what it is served. In: the running app, the config file, a function
 * writing the config for a canary weight, the node id. Out: the number of edits made.
 */
import { rename, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RunningApp } from '../../src/app.js';
import { TypeUrl } from '../../src/xds/resource-types.js';
import { waitUntil } from './tmp.js';

/** A canary weight on the split, or 'deleted': no route and no cluster in the file. */
export type CanaryWeight = number | 'deleted';

export const CANARY_CYCLE: readonly CanaryWeight[] = [0, 20, 'deleted', 20];

/** The proxyless gRPC config: `target`'s routes split between `greeter` and `greeter-canary`. */
export function grpcCanaryYaml(target: string, main: number, canary: number, weight: CanaryWeight): string {
  const has = weight !== 'deleted';
  return `# written by test/support/canary-edits.ts
listener:
  "${target}": { type: grpc, virtual-hosts: ["greeter"] }
virtual-hosts:
  greeter:
    domain: ["${target}"]
    cluster:
      greeter: { prefix: ["/consulxds.test.Greeter/"]${has ? ', weight: 80' : ''} }
${has ? `      greeter-canary: { prefix: ["/consulxds.test.Greeter/"], weight: ${weight} }\n` : ''}cluster:
  loadbalancer:
    greeter: { lb-policy: round-robin }
${has ? '    greeter-canary: { lb-policy: round-robin }\n' : ''}endpoint:
  eds:
    greeter:
      static: [{ address: "127.0.0.1", port: ${main} }]
${has ? `    greeter-canary:\n      static: [{ address: "127.0.0.1", port: ${canary} }]\n` : ''}`;
}

export interface CanaryEditOptions {
  readonly app: RunningApp;
  readonly configFile: string;
  readonly yaml: (weight: CanaryWeight) => string;
  readonly nodeId: string;
  /** Rounds of CANARY_CYCLE (default 6: 24 edits). */
  readonly rounds?: number;
  /** How long calls run on each edit's final snapshot (default 150 ms). */
  readonly dwellMs?: number;
}

/** Makes the edits; resolves with their number. */
export async function runCanaryEdits(opts: CanaryEditOptions): Promise<number> {
  const { app } = opts;
  const routes = () => {
    const st = app.xdsServer.registry.nodeStatus(opts.nodeId);
    return st === undefined ? undefined : app.cache.get(st.group)?.version(TypeUrl.RouteConfiguration);
  };
  let edits = 0;
  for (let round = 0; round < (opts.rounds ?? 6); round++) {
    for (const w of CANARY_CYCLE) {
      const what = `edit ${edits + 1} (canary ${w})`;
      const before = app.publisher.status().publishes;
      await writeFile(`${opts.configFile}.tmp`, opts.yaml(w));
      await rename(`${opts.configFile}.tmp`, opts.configFile);
      await waitUntil(() => app.publisher.status().publishes > before, { what: `${what} to be published`, intervalMs: 5 });
      await waitUntil(
        () => {
          const st = app.xdsServer.registry.nodeStatus(opts.nodeId);
          return app.status().groups.every((g) => g.makeBeforeBreak === undefined) && st?.upToDate && st.types.RDS?.ackedVersion === routes();
        },
        { what: `${opts.nodeId} to ACK ${what}`, timeoutMs: 20_000, intervalMs: 10, context: () => JSON.stringify(app.status()) },
      );
      edits++;
      await sleep(opts.dwellMs ?? 150);
    }
  }
  return edits;
}
