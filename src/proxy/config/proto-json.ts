/**
 * Protobuf -> JSON the way Envoy prints it. In: decoded protobufjs messages (or, for Struct, the
 * plain `toObject` shape). Out: proto3 canonical JSON with the original snake_case field names,
 * as Envoy's admin /config_dump renders it: wrappers as bare values, Durations as "1.5s",
 * Timestamps as RFC 3339, Structs as plain JSON, Any as {"@type": ..., fields}, 64-bit integers
 * as strings, enums by name, unset fields left out. Test helpers written against Envoy's dump
 * read ours unchanged.
 */
import protobuf from 'protobufjs';
import { envoyRoot } from '../../envoy/protos.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const WRAPPERS = new Set([
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
]);

/** google.protobuf.Struct / Value in protobufjs `toObject` shape -> plain JSON. */
export function structToJson(struct: Record<string, unknown>): Record<string, Json> {
  const out: Record<string, Json> = {};
  const fields = (struct.fields ?? {}) as Record<string, Record<string, unknown>>;
  for (const [k, v] of Object.entries(fields)) out[k] = valueToJson(v);
  return out;
}

/** google.protobuf.Value; protobufjs' bundled struct.proto names its fields in camelCase. */
function valueToJson(v: Record<string, unknown>): Json {
  const pick = (camel: string, snake: string): unknown => (camel in v ? v[camel] : v[snake]);
  const s = pick('stringValue', 'string_value');
  if (s !== undefined) return String(s);
  const n = pick('numberValue', 'number_value');
  if (n !== undefined) return Number(n);
  const b = pick('boolValue', 'bool_value');
  if (b !== undefined) return Boolean(b);
  const st = pick('structValue', 'struct_value');
  if (st !== undefined) return structToJson(st as Record<string, unknown>);
  const l = pick('listValue', 'list_value');
  if (l !== undefined) return (((l as { values?: unknown[] }).values ?? []) as Record<string, unknown>[]).map(valueToJson);
  return null;
}

function fullName(t: protobuf.Type): string {
  return t.fullName.replace(/^\./, '');
}

function durationText(seconds: number, nanos: number): string {
  const total = seconds + nanos / 1e9;
  return `${Number(total.toFixed(9))}s`;
}

function toNum(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

function scalar(field: protobuf.Field, v: unknown): Json {
  if (field.resolvedType instanceof protobuf.Enum) {
    const name = field.resolvedType.valuesById[v as number];
    return name ?? (v as number);
  }
  switch (field.type) {
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      return String(toNum(v));
    case 'bytes':
      return Buffer.from(v as Uint8Array).toString('base64');
    default:
      return v as Json;
  }
}

/** A decoded message of `type` -> canonical JSON (snake_case names). */
export function messageToJson(type: protobuf.Type, msg: protobuf.Message | Record<string, unknown>): Json {
  const name = fullName(type);
  const m = msg as Record<string, unknown>;
  if (WRAPPERS.has(name)) {
    const f = type.fields.value;
    return f ? scalar(f, m.value ?? f.typeDefault) : null;
  }
  if (name === 'google.protobuf.Duration') return durationText(toNum(m.seconds ?? 0), toNum(m.nanos ?? 0));
  if (name === 'google.protobuf.Timestamp') return new Date(toNum(m.seconds ?? 0) * 1000 + Math.round(toNum(m.nanos ?? 0) / 1e6)).toISOString();
  if (name === 'google.protobuf.Struct') return structToJson(type.toObject(msg as protobuf.Message, { defaults: false }) as Record<string, unknown>);
  if (name === 'google.protobuf.Any') {
    const url = String(m.type_url ?? '');
    const inner = lookup(url.slice(url.lastIndexOf('/') + 1));
    if (!inner) return { '@type': url };
    const decoded = inner.decode(m.value as Uint8Array);
    const body = messageToJson(inner, decoded);
    return { '@type': url, ...(typeof body === 'object' && body !== null && !Array.isArray(body) ? body : { value: body }) };
  }
  const out: Record<string, Json> = {};
  for (const field of type.fieldsArray) {
    const v = m[field.name];
    // Decoded messages own only the fields that were on the wire; defaults live on the prototype.
    if (v === undefined || v === null || !Object.hasOwn(m, field.name)) continue;
    const sub = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    const conv = (x: unknown): Json => (sub ? messageToJson(sub, x as protobuf.Message) : scalar(field, x));
    if (field.map) {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length === 0) continue;
      out[field.name] = Object.fromEntries(entries.map(([k, x]) => [k, conv(x)]));
    } else if (field.repeated) {
      const arr = v as unknown[];
      if (arr.length === 0) continue;
      out[field.name] = arr.map(conv);
    } else {
      out[field.name] = conv(v);
    }
  }
  return out;
}

function lookup(name: string): protobuf.Type | undefined {
  try {
    return envoyRoot().lookupType(name);
  } catch {
    return undefined;
  }
}

/** Bytes of a message of `typeName` -> canonical JSON with '@type' first. */
export function bytesToJson(typeUrl: string, bytes: Uint8Array): Json {
  const t = lookup(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
  if (!t) return { '@type': typeUrl };
  const body = messageToJson(t, t.decode(bytes));
  return { '@type': typeUrl, ...(body as Record<string, Json>) };
}

export type { Json };
