import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, reserve } from '../../support/ports.js';

const DIR = join(tmpdir(), 'consul-xds-port-reservations');

test('freePort: never from the kernel ephemeral range, never the same port twice', async () => {
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const seen = new Set<number>();
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    assert.ok(p < (low as number) || p > (high as number), `${p} is in the ephemeral range ${low}-${high}`);
    assert.ok(!seen.has(p), `${p} handed out twice`);
    seen.add(p);
    assert.equal(readFileSync(join(DIR, String(p)), 'utf8'), String(process.pid), `${p} is reserved for this process`);
  }
});

test('a port reserved by a live process is refused; a dead owner is taken over', async () => {
  const port = await freePort();
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    const pid = other.pid as number;
    writeFileSync(join(DIR, String(port)), String(pid));
    assert.equal(reserve(port), false, 'a live owner keeps its port');
    other.kill('SIGKILL');
    await new Promise((r) => other.once('exit', r));
    assert.equal(reserve(port), true, 'the reservation of a process that is gone is taken over');
    assert.equal(readFileSync(join(DIR, String(port)), 'utf8'), String(process.pid));
  } finally {
    other.kill('SIGKILL');
  }
});
