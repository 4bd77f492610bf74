/**
 * envoy.config.core.v3.Node bytes -> NodeInfo. Every xDS request (SotW or delta) may carry the
 * node; a stream decodes it once, from the first request that has one.
 */
import type protobuf from 'protobufjs';
import { messageType, TO_OBJECT } from '../envoy/protos.js';
import type { JsonValue, NodeInfo } from '../cache/node-info.js';

let nodeType: protobuf.Type | undefined;

/** core.v3.Node bytes -> NodeInfo (metadata Struct as plain JSON). */
export function nodeInfoOf(bytes: Uint8Array): NodeInfo {
  nodeType ??= messageType('envoy.config.core.v3.Node');
  const o = nodeType.toObject(nodeType.decode(bytes), TO_OBJECT) as {
    id?: string;
    cluster?: string;
    user_agent_name?: string;
    user_agent_version?: string;
    user_agent_build_version?: { version?: { major_number?: number; minor_number?: number; patch?: number } };
    locality?: { region?: string; zone?: string; sub_zone?: string };
    metadata?: StructObject;
  };
  const build = o.user_agent_build_version?.version;
  return Object.freeze({
    id: o.id ?? '',
    cluster: o.cluster ?? '',
    userAgentName: o.user_agent_name ?? '',
    userAgentVersion: o.user_agent_version ?? (build ? `${build.major_number ?? 0}.${build.minor_number ?? 0}.${build.patch ?? 0}` : ''),
    ...(o.locality ? { locality: Object.freeze({ ...o.locality }) } : {}),
    metadata: Object.freeze(structToJson(o.metadata)),
  });
}

interface StructObject {
  fields?: Record<string, ValueObject>;
}
/** google.protobuf.Value as protobufjs defines it (its bundled well-known types are camelCase). */
interface ValueObject {
  nullValue?: unknown;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructObject;
  listValue?: { values?: ValueObject[] };
}

function structToJson(s: StructObject | undefined): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJson(v);
  return out;
}

function valueToJson(v: ValueObject): JsonValue {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.structValue !== undefined) return structToJson(v.structValue);
  if (v.listValue !== undefined) return (v.listValue.values ?? []).map(valueToJson);
  return null;
}

/** NodeInfo -> a core.v3.Node object for protobufjs fromObject (CSDS answers with the node it knows). */
export function nodeObjectOf(node: NodeInfo): Record<string, unknown> {
  return {
    id: node.id,
    cluster: node.cluster,
    user_agent_name: node.userAgentName,
    user_agent_version: node.userAgentVersion,
    ...(node.locality ? { locality: { ...node.locality } } : {}),
    metadata: jsonToStruct(node.metadata),
  };
}

function jsonToStruct(o: { readonly [key: string]: JsonValue }): StructObject {
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, jsonToValue(v)])) };
}

function jsonToValue(v: JsonValue): ValueObject {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonToValue) } };
  return { structValue: jsonToStruct(v as { readonly [key: string]: JsonValue }) };
}
