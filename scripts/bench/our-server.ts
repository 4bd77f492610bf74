/**
 * Our xDS server as the fan-out benchmark runs it: a child process wired the way `serve` wires
 * it (parseConfig -> translate -> buildSnapshot -> SnapshotCache.set, createXdsServer), driven
 * over stdin with the protocol of server-process.ts.
 *
 * A process of its own, like the peers, so its RSS holds only the server, and the driver's
 * bookkeeping never runs on the server's event loop. Run with --expose-gc (for {"op":"gc"}).
 * {"op":"profile-start"} / {"op":"profile-stop"} take a CPU profile (node:inspector) of just the
 * measured changes, without start-up, connects and warm-up in it.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { createInterface } from 'node:readline';
import { parseConfig } from '../../src/config/parse.js';
import { staticEndpoints } from '../../src/config/static-endpoints.js';
import { translate } from '../../src/translate/index.js';
import { buildSnapshot, type Snapshot } from '../../src/cache/snapshot.js';
import { DEFAULT_GROUP, SnapshotCache } from '../../src/cache/snapshot-cache.js';
import { createXdsServer } from '../../src/server/index.js';
import { silentLogger } from '../../src/log.js';
import { BENCH_CONFIG_MAX_BYTES } from './config-gen.js';
import type { ServerCommand, ServerReply } from './server-process.js';

/** The config pipeline, named so a profile of the fan-out can leave it out (profile-top.ts). */
function prepareSnapshot(text: string, source: string): Snapshot {
  const config = parseConfig(text, source, { maxBytes: BENCH_CONFIG_MAX_BYTES });
  return buildSnapshot(translate(config, staticEndpoints(config)));
}

function reply(r: ServerReply): void {
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

async function main(): Promise<void> {
  const cache = new SnapshotCache({ logger: silentLogger });
  const server = createXdsServer({ cache, logger: silentLogger });
  const port = await server.listen('127.0.0.1', 0);
  reply({ op: 'listening', port });

  const gc = (globalThis as { gc?: () => void }).gc;
  let profiler: Session | undefined;
  let prepared = 0;
  let next: Snapshot | undefined;
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = JSON.parse(line) as ServerCommand;
    if (command.op === 'prepare') {
      if (!('config' in command)) throw new Error('our server is given the config text, not resources');
      next = prepareSnapshot(command.config, `bench-config-${prepared++}`);
      reply({ op: 'prepare' });
    } else if (command.op === 'publish') {
      if (!next) throw new Error('publish before prepare');
      const publishNs = process.hrtime.bigint();
      cache.set(DEFAULT_GROUP, next);
      const blockMs = Number(process.hrtime.bigint() - publishNs) / 1e6;
      reply({ op: 'publish', publishNs: publishNs.toString(), blockMs });
    } else if (command.op === 'gc') {
      gc?.();
      gc?.();
      reply({ op: 'gc' });
    } else if (command.op === 'profile-start') {
      profiler ??= new Session();
      profiler.connect();
      profiler.post('Profiler.enable', () => profiler?.post('Profiler.start', () => reply({ op: 'profile-start' })));
    } else if (command.op === 'profile-stop') {
      const file = command.path;
      profiler?.post('Profiler.stop', (err, result) => {
        if (err) throw err;
        writeFileSync(file, JSON.stringify(result.profile));
        profiler?.disconnect();
        reply({ op: 'profile-stop' });
      });
    }
  });
  lines.on('close', () => {
    void server.close().then(() => process.exit(0));
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`our-server: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
