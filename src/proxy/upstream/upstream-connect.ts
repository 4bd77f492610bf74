/**
 * One connection to an upstream host, plaintext or TLS as its cluster's transport_socket says.
 * In: the host's address, the cluster's UpstreamTlsModel (or none) and the ALPN protocols the
 * caller speaks. Out: a socket (net.Socket or tls.TLSSocket, Nagle off) and the event after which
 * it carries bytes. Used by the TCP proxy, the HTTP/2 pools and the health checker; the HTTP/1.1
 * pool hands the same options to undici.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { UpstreamTlsModel } from '../config/tls-context.js';

/** tls.connect options for `host:port`: the model's, and ALPN (the model's own, else `alpn`). */
export function upstreamTlsOptions(model: UpstreamTlsModel, host: string, port: number, alpn: readonly string[]): tls.ConnectionOptions {
  const protocols = model.alpn.length > 0 ? model.alpn : alpn;
  return { ...model.options, host, port, ...(protocols.length > 0 ? { ALPNProtocols: [...protocols] } : {}) };
}

export function connectUpstream(address: string, port: number, model: UpstreamTlsModel | undefined, alpn: readonly string[]): net.Socket {
  if (!model) return net.connect({ host: address, port, noDelay: true });
  const socket = tls.connect(upstreamTlsOptions(model, address, port, alpn));
  socket.setNoDelay(true);
  return socket;
}

/** 'secureConnect' for TLS (handshake and verification done), 'connect' for TCP. */
export function connectedEvent(socket: net.Socket): 'connect' | 'secureConnect' {
  return socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect';
}
