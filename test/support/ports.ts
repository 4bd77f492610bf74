/**
 * Free loopback ports for configs that must name a port before the process that binds it starts
 * (an Envoy listener in our YAML, a Consul agent's ports, the examples' `--free-ports`).
 * Everything we bind ourselves uses port 0 directly.
 *
 * "Free a moment ago" is not enough on a busy machine: a port taken from the kernel's ephemeral
 * range (ip_local_port_range) can be handed to any outgoing connection or any `listen(0)` before
 * our child binds it (CI once lost a run to exactly that: an admin port taken between the pick
 * and the bind). So ports come from below the ephemeral range, where the kernel never hands out
 * ports by itself, and each one is reserved across processes (parallel test files) by a file
 * created with O_EXCL under the OS temp dir, holding the owner's pid. A reservation lasts until its
 * process exits; one whose owner is gone is taken over. A port is also checked to be bindable now,
 * so a daemon that holds it is skipped.
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RESERVATIONS = join(tmpdir(), 'consul-xds-port-reservations');
/** Lowest port we hand out: clear of the well-known and commonly configured service ports. */
const FLOOR = 10_000;
const mine = new Set<number>();

/** The kernel's ephemeral range; Linux's default when it cannot be read. */
function ephemeralRange(): readonly [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low as number, high as number];
  } catch {
    // not Linux, or /proc is hidden: assume the default
  }
  return [32_768, 60_999];
}

/** The range we pick from: below the ephemeral range, or above it when below is too narrow. */
function pickRange(): readonly [number, number] {
  const [low, high] = ephemeralRange();
  if (low - FLOOR >= 4_096) return [FLOOR, low - 1];
  if (65_535 - high >= 4_096) return [high + 1, 65_535];
  return [FLOOR, 65_535];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Claims `port` for this process across processes; false when a live process holds it. */
export function reserve(port: number): boolean {
  mkdirSync(RESERVATIONS, { recursive: true });
  const file = join(RESERVATIONS, String(port));
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = Number.NaN;
    try {
      owner = Number(readFileSync(file, 'utf8'));
    } catch {
      // removed meanwhile: try again
    }
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) return false;
    try {
      unlinkSync(file);
    } catch {
      // another process took it over first; the next writeFileSync tells
    }
  }
  return false;
}

function release(port: number): void {
  try {
    unlinkSync(join(RESERVATIONS, String(port)));
  } catch {
    // already gone
  }
}

process.once('exit', () => {
  for (const port of mine) release(port);
});

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** A loopback port no other process of ours holds or will be given, bindable right now. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [from, to] = pickRange();
  for (let attempt = 0; attempt < 1_000; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    if (mine.has(port) || !reserve(port)) continue;
    if (await bindable(port, host)) {
      mine.add(port);
      return port;
    }
    release(port);
  }
  throw new Error(`freePort: no free port in ${from}-${to} after 1000 tries (reservations in ${RESERVATIONS})`);
}
