/**
 * Request header mutations the HTTP connection manager owes every forwarded request (Envoy's
 * conn_manager_utility). In: the HCM settings, the Downstream and the upstream header map being
 * built. Out: x-forwarded-for / x-forwarded-proto set by Envoy's rules.
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { HcmModel } from '../config/listener-resource.js';
import type { HeaderMap } from '../upstream/conn-pool.js';
import type { Downstream } from './downstream.js';

/** This host's first non-loopback IPv4 address (as Envoy's local address), found once. */
let hostAddress: string | undefined;
function localHostAddress(): string {
  if (hostAddress === undefined) {
    hostAddress = '127.0.0.1';
    search: for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) {
        if (a.family === 'IPv4' && !a.internal) {
          hostAddress = a.address;
          break search;
        }
      }
    }
  }
  return hostAddress;
}

/**
 * x-forwarded-for and x-forwarded-proto by Envoy's rules. With use_remote_address the data plane
 * is the edge: it appends the peer to XFF (a loopback peer as this host's address, as Envoy does)
 * and, trusting no hop, sets XFP from the connection. Otherwise XFF passes as sent and a client's
 * XFP is kept. XFP is never taken from `:scheme`: it is `https` when the listener terminated TLS, else `http`.
 */
export function setForwarded(hcm: HcmModel, down: Downstream, headers: HeaderMap): void {
  if (hcm.useRemoteAddress) {
    if (!hcm.skipXffAppend) {
      let ip = down.remoteIp;
      if (ip.startsWith('::ffff:') && ip.includes('.')) ip = ip.slice(7);
      if (isIP(ip) === 0 || ip.startsWith('127.') || ip === '::1') ip = localHostAddress();
      const xff = down.header('x-forwarded-for');
      headers['x-forwarded-for'] = xff === undefined || xff === '' ? ip : `${xff},${ip}`;
    }
    if (hcm.xffNumTrustedHops === 0) {
      headers['x-forwarded-proto'] = down.secure ? 'https' : 'http';
      return;
    }
  }
  if (headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = down.secure ? 'https' : 'http';
}
