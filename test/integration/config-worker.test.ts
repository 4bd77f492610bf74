/**
 * serve() parses configs in a worker thread (src/config/parse-worker.ts), so refusing an
 * expensive config never stalls its event loop. Against the real app in file mode, with /health
 * polled every 10 ms on the same event loop: while the costliest configs under the size cap are
 * refused, every poll answers and no gap between answers exceeds MAX_GAP_MS (with
 * `configParsing.inProcess` each of these refusals stalls the loop for 0.7-1.1 s on a 2-core
 * machine, and this test fails), and the last good snapshot keeps serving. A parse over its time budget
 * and a parser thread that dies are refused naming the file, and the next good edit publishes.
 *
 * Timing: every wait is a poll with a deadline, never a fixed sleep.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type RunningApp, type ServeOptions } from '../../src/app.js';
import { MINIMAL_CONFIG } from '../support/config-text.js';
import { EXPENSIVE_REFUSALS, pollHealth } from '../support/config-stall.js';
import { captureLog } from '../support/log-capture.js';
import { makeTempDir, waitUntil } from '../support/tmp.js';

/**
 * Far above a free loop's gaps (tens of ms; a few hundred on a 2-core machine at load 5), below
 * an in-process refusal (0.7-1.1 s per case on that machine, and more on a slower one).
 */
const MAX_GAP_MS = 500;

let app: RunningApp | undefined;
let dir: Awaited<ReturnType<typeof makeTempDir>> | undefined;
afterEach(async () => {
  await app?.close();
  await dir?.remove();
  app = undefined;
  dir = undefined;
});

async function start(configParsing?: ServeOptions['configParsing']): Promise<{ app: RunningApp; file: string; admin: string }> {
  dir = await makeTempDir('config-worker');
  const file = join(dir.path, 'consul-xds.yaml');
  await writeFile(file, MINIMAL_CONFIG);
  app = await serve({ configFile: file, xds: { host: '127.0.0.1', port: 0 }, admin: { port: 0 }, als: false, logger: captureLog().logger, configParsing });
  return { app, file, admin: `http://127.0.0.1:${app.adminPort}` };
}

/** Writes `text` and waits until /status shows a refusal of it (a new lastError.at); returns that error. */
async function refused(file: string, admin: string, text: string, timeoutMs = 30_000): Promise<{ origin: string; code: string; message: string }> {
  const before = (await status(admin)).lastError?.at;
  await writeFile(file, text);
  return waitUntil(
    async () => {
      const e = (await status(admin)).lastError;
      return e && e.at !== before ? e : undefined;
    },
    { what: `a refusal of the new ${file} in /status`, timeoutMs, intervalMs: 10 },
  );
}

async function status(
  admin: string,
): Promise<{ configOrigin?: string; snapshotVersions?: Record<string, string>; lastError?: { origin: string; code: string; message: string; at: string } }> {
  const body = (await (await fetch(`${admin}/status`)).json()) as { groups: Array<Awaited<ReturnType<typeof status>>> };
  return body.groups[0] ?? {};
}

describe('config parsing off the event loop (serve, file mode)', () => {
  it('while the costliest configs are refused, /health answers every poll without a gap over 500 ms, and the last good snapshot serves', async () => {
    const { file, admin } = await start();
    const served = (await status(admin)).snapshotVersions;
    assert.ok(served, 'a snapshot is served');
    for (const [name, build] of Object.entries(EXPENSIVE_REFUSALS)) {
      const text = build(); // before polling: building it is the test's cost, not serve's
      const polls = pollHealth(admin, 10);
      const e = await refused(file, admin, text);
      const { latencies, maxGapMs, failures } = await polls.stop();
      assert.equal(e.code, 'CXDS_CONFIG_INVALID', name);
      assert.ok(e.message.startsWith(`${file}: `), `${name}: the refusal names the file: ${e.message.slice(0, 200)}`);
      assert.equal(failures, 0, `${name}: every /health poll answered`);
      assert.ok(latencies.length > 0, `${name}: /health was polled`);
      assert.ok(
        maxGapMs < MAX_GAP_MS,
        `${name}: longest gap between /health answers ${maxGapMs.toFixed(0)} ms (max latency ${Math.max(...latencies).toFixed(0)} ms, ${latencies.length} polls), want < ${MAX_GAP_MS} ms`,
      );
      assert.deepEqual((await status(admin)).snapshotVersions, served, `${name}: the last good snapshot keeps serving`);
    }
  });

  it('the 40,000-key refusal reads as parseConfig throws it: the same message, 20 problems listed and the rest counted', async () => {
    const { file, admin } = await start();
    const e = await refused(file, admin, EXPENSIVE_REFUSALS['unknown keys: 40,000 in one section']?.() ?? '');
    assert.match(e.message, /cluster\.k0000: unknown key \(misspelled, or not valid in this section\) \(line 14, col 3\);/);
    assert.match(e.message, /; and 39980 more$/);
  });

  it('a parse over its time budget is abandoned and refused naming the file; the next good edit publishes', async () => {
    const { app, file, admin } = await start({ timeoutMs: 300 });
    const e = await refused(file, admin, EXPENSIVE_REFUSALS['routes: 20,000 share "/" without weights']?.() ?? '');
    assert.equal(e.code, 'CXDS_CONFIG_PARSE_ABORTED');
    assert.equal(e.message, `${file}: config not parsed: parsing took longer than 300 ms; abandoned (the parser thread was restarted)`);
    await published(app, file, admin);
  });

  it('a parser thread that dies (here: out of its heap) is replaced; its text is refused naming the file; the next good edit publishes', async () => {
    const { app, file, admin } = await start({ maxHeapMb: 16 });
    const e = await refused(file, admin, EXPENSIVE_REFUSALS['unknown keys: 40,000 in one section']?.() ?? '');
    assert.equal(e.code, 'CXDS_CONFIG_PARSE_ABORTED');
    assert.match(
      e.message,
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: config not parsed: the parser thread died \\(.*memory.*\\); a new one takes the next text$`),
    );
    await published(app, file, admin);
  });
});

/** A good edit (the listener's port moves) reaches the served snapshot. */
async function published(app: RunningApp, file: string, admin: string): Promise<void> {
  const before = app.publisher.status().publishes;
  await writeFile(file, MINIMAL_CONFIG.replace('port: 8000', 'port: 8001'));
  await waitUntil(() => app.publisher.status().publishes > before, { what: 'the good edit to publish', timeoutMs: 20_000 });
  assert.equal((await status(admin)).configOrigin, file);
}
