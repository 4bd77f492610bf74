/**
 * The four xDS resource types as the proxy consumes them, one table entry each with the same
 * four facts (grpc-js-xds' habit): type URL, decode+validate (bytes -> name and model, or a
 * ResourceError naming resource and field), whether a SotW response is the full set, and a
 * human label for errors. In: the value bytes of one google.protobuf.Any. Out: DecodedResource.
 */
import type protobuf from 'protobufjs';
import { envoyRoot, messageType } from '../../envoy/protos.js';
import { resourceType, TypeUrl, type XdsTypeUrl } from '../../xds/resource-types.js';
import { DECODE_OPTIONS, FieldReader, ResourceError } from '../config/field-reader.js';
import { readCluster, type ClusterModel } from '../config/cluster-resource.js';
import { readLoadAssignment, type EndpointsModel } from '../config/endpoint-resource.js';
import { readListener, type ListenerModel } from '../config/listener-resource.js';
import { readRouteConfiguration, type RouteConfigModel } from '../config/route-resource.js';

/** Extension protos the proxy reads that the shared root does not load (access-log file sink). */
const EXTRA_PROTOS = ['envoy/extensions/access_loggers/file/v3/file.proto'];
let extrasLoaded = false;

/** Loads the extension protos into the shared root (a control plane in this process can then pack them too). */
export function loadExtras(): void {
  if (extrasLoaded) return;
  extrasLoaded = true;
  const root = envoyRoot();
  root.loadSync(EXTRA_PROTOS, { keepCase: true });
  root.resolveAll();
}

export interface ModelOf {
  [TypeUrl.Cluster]: ClusterModel;
  [TypeUrl.ClusterLoadAssignment]: EndpointsModel;
  [TypeUrl.Listener]: ListenerModel;
  [TypeUrl.RouteConfiguration]: RouteConfigModel;
}

export interface DecodedResource<T extends XdsTypeUrl = XdsTypeUrl> {
  readonly name: string;
  readonly model: ModelOf[T];
  /** The Any value bytes: change detection and /config_dump. */
  readonly bytes: Uint8Array;
}

/** The proxy's reader per type; label and name field come from the resource-type registry. */
const READERS: Readonly<Record<XdsTypeUrl, (r: FieldReader) => unknown>> = {
  [TypeUrl.Cluster]: readCluster,
  [TypeUrl.ClusterLoadAssignment]: (r) => readLoadAssignment(r, true),
  [TypeUrl.Listener]: readListener,
  [TypeUrl.RouteConfiguration]: readRouteConfiguration,
};

const types = new Map<string, protobuf.Type>();

function typeOf(url: XdsTypeUrl): protobuf.Type {
  let t = types.get(url);
  if (!t) {
    loadExtras();
    t = messageType(resourceType(url).messageName);
    types.set(url, t);
  }
  return t;
}

export interface RejectedResource {
  /** The resource's name when it could be read. */
  readonly name: string | undefined;
  readonly error: string;
}

/**
 * Decodes and validates one resource. `index` names it in errors when its name is unreadable;
 * the error message starts with the resource's type and name.
 */
export function decodeResource<T extends XdsTypeUrl>(url: T, bytes: Uint8Array, index: number): DecodedResource<T> | RejectedResource {
  const spec = resourceType(url);
  const type = typeOf(url);
  let obj: Record<string, unknown>;
  try {
    obj = type.toObject(type.decode(bytes), DECODE_OPTIONS) as Record<string, unknown>;
  } catch (err) {
    return { name: undefined, error: `${spec.label} at index ${index}: cannot decode: ${(err as Error).message}` };
  }
  const rawName = obj[spec.nameField];
  const named = typeof rawName === 'string' && rawName !== '';
  const name = named ? rawName : `<index ${index}>`;
  const reader = new FieldReader(obj, `${spec.label} '${name}'`);
  try {
    const model = READERS[url](reader) as ModelOf[T];
    reader.finish();
    return { name, model, bytes };
  } catch (err) {
    const message = err instanceof ResourceError ? err.message : `${spec.label} '${name}': ${(err as Error).message}`;
    return { name: named ? name : undefined, error: message };
  }
}

export function isRejected(r: DecodedResource | RejectedResource): r is RejectedResource {
  return 'error' in r;
}
