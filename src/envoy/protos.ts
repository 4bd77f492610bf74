/**
 * Envoy's v3 API protos, loaded once from the copy that ships inside `@grpc/grpc-js-xds`
 * (deps/envoy-api, deps/xds, deps/googleapis, deps/protoc-gen-validate). Nothing is copied into
 * this repository. In: proto file names. Out: protobufjs types to encode/decode resources and
 * the xDS / ALS messages.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);

/** Folders that hold Envoy's API protos and their imports, in lookup order. */
export function envoyProtoIncludeDirs(): string[] {
  const pkg = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(pkg, 'deps', d));
}

/** Every proto this project encodes or decodes; one root keeps Any packing consistent. */
const PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/cluster/v3/cds.proto',
  'envoy/service/endpoint/v3/eds.proto',
  'envoy/service/listener/v3/lds.proto',
  'envoy/service/route/v3/rds.proto',
  'envoy/service/accesslog/v3/als.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/connection_limit/v3/connection_limit.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/data/accesslog/v3/accesslog.proto',
  'envoy/admin/v3/config_dump.proto',
  'envoy/service/status/v3/csds.proto',
];

let cached: protobuf.Root | undefined;

/** The shared protobufjs root with all of PROTO_FILES loaded and resolved. */
export function envoyRoot(): protobuf.Root {
  if (cached) return cached;
  const dirs = envoyProtoIncludeDirs();
  // protobufjs ships its own google/protobuf/*.proto (descriptor.proto among them); prefer those
  // so well-known types get protobufjs' JSON wrappers (Any with '@type', Duration, Struct).
  const pbCommon = path.join(path.dirname(require.resolve('protobufjs/package.json')));
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (target.startsWith('google/protobuf/')) {
      const own = path.join(pbCommon, target);
      if (existsSync(own)) return own;
    }
    for (const dir of dirs) {
      const candidate = path.join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(PROTO_FILES, { keepCase: true });
  root.resolveAll();
  cached = root;
  return root;
}

/** Look up a message type by its full name, e.g. `envoy.config.cluster.v3.Cluster`. */
export function messageType(fullName: string): protobuf.Type {
  return envoyRoot().lookupType(fullName);
}

/** Options for turning decoded messages into plain JSON-friendly objects. */
export const TO_OBJECT: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  bytes: String,
  defaults: false,
  arrays: true,
  oneofs: false,
  json: true,
};
