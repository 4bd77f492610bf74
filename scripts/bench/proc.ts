/**
 * What the benchmark reads from the kernel about a server under test (Linux /proc).
 *
 * In: a pid, a port. Out: resident memory (KiB), CPU time used so far, and the number of
 * established TCP connections the load generators hold to the server's port, which is how the
 * benchmark checks that every simulated client has its own HTTP/2 connection.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** VmRSS of a process in KiB ('self' for this process). */
export function rssKb(pid: number | 'self'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m?.[1]) throw new Error(`/proc/${pid}/status has no VmRSS line`);
  return Number(m[1]);
}

const TCP_ESTABLISHED = '01';

/** Inodes of the sockets a process holds open (its fds that link to "socket:[inode]"). */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  const dir = `/proc/${pid}/fd`;
  for (const fd of readdirSync(dir)) {
    let target: string;
    try {
      target = readlinkSync(`${dir}/${fd}`);
    } catch {
      continue; // closed since the listing
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m?.[1]) out.add(m[1]);
  }
  return out;
}

/**
 * Established TCP connections (IPv4 and IPv6) to `port` (their remote end) held by the processes
 * `pids`: the load generators' own connections to the server. Counted from the clients' side
 * because on a shared machine a stranger can connect to the server too (another program's test
 * that took the ephemeral port for a free one), and those connections must not count as clients.
 */
export function connectionsTo(port: number, pids: readonly number[]): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const owned = new Set(pids.flatMap((pid) => [...socketInodes(pid)]));
  let count = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6 on this machine
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const remote = cols[2];
      // Columns: sl, local, remote, state, ..., inode (10th).
      if (remote?.endsWith(`:${hexPort}`) && cols[3] === TCP_ESTABLISHED && owned.has(cols[9] ?? '')) count++;
    }
  }
  return count;
}

/** Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/**
 * User + system CPU time of a process in ms (10 ms resolution). CPU per change does not depend on
 * what else the shared machine runs, unlike latency, so it is the steadier figure to compare.
 */
/** CPU time of `pid` and its direct children (a proxy's --concurrency workers), in ms. */
export function treeCpuMs(pid: number): number {
  let total = cpuMs(pid);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) is the second after the command name.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) total += cpuMs(Number(entry));
    } catch {
      // gone since the listing
    }
  }
  return total;
}

export function cpuMs(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), counted from field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / USER_HZ;
}
