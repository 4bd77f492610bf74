/**
 * The benchmark's gRPC method (echo.proto), named once for the upstream, the readiness probe and
 * the load generator. In: nothing. Out: its names, the .proto file's path, and the request the
 * load generator sends.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root, from dist/scripts/bench-dataplane/ (compiled) three levels up. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Non-TypeScript helpers (proto, lua, install scripts) are read from the source folder. */
export const HELPERS_DIR = path.join(ROOT, 'scripts', 'bench-dataplane');

export const PROTO_FILE = path.join(HELPERS_DIR, 'echo.proto');
/** package.Service/Method, as ghz's --call takes it. */
export const ECHO_CALL = 'consulxds.bench.Echo/Unary';
export const ECHO_PATH = `/${ECHO_CALL}`;

/** The request payload: 32 bytes, small like a typical unary call's message. */
export const PAYLOAD = Buffer.alloc(32, 0x61);

/** The request as ghz's --data JSON (bytes fields are base64 in proto3 JSON). */
export const PAYLOAD_JSON = JSON.stringify({ payload: PAYLOAD.toString('base64') });

/** Msg{payload} encoded (field 1, length-delimited) and gRPC-framed (flag byte + length). */
export function framedRequest(): Buffer {
  const msg = Buffer.concat([Buffer.from([0x0a, PAYLOAD.length]), PAYLOAD]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}
