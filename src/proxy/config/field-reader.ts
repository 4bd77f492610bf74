/**
 * Strict reading of decoded xDS resources. In: a resource decoded to a plain object (protobufjs
 * `toObject` with DECODE_OPTIONS: only fields that were on the wire are present). Out: typed
 * values, and - when `finish()` is called on the root reader - a ResourceError naming the first
 * field that is set but that no code read.
 *
 * Why: the proxy must never silently ignore a field that changes routing. Every resource module
 * reads the fields it honours and explicitly `ignore()`s the ones that are harmless to skip
 * (stat names, metadata); anything else that arrives set is refused, so a NACK names exactly the
 * field we do not implement instead of the proxy routing differently from Envoy.
 */
import type protobuf from 'protobufjs';

/** Conversion for decoded resources: absent or empty fields stay absent, Any keeps '@type'. */
export const DECODE_OPTIONS: protobuf.IConversionOptions = Object.freeze({
  longs: Number,
  enums: String,
  bytes: String,
  defaults: false,
  arrays: false,
  objects: false,
  oneofs: false,
  json: true,
});

/** A resource (or part of one) the proxy cannot honour; the message names resource and field. */
export class ResourceError extends Error {
  constructor(
    message: string,
    /** The field path inside the resource, and the reason alone (for callers that format their own). */
    readonly field = '',
    readonly reason = message,
  ) {
    super(message);
    this.name = 'ResourceError';
  }
}

type Obj = Record<string, unknown>;

/** One message's entry in support.ts: fields accepted without acting on them, and fields refused with a reason. */
export interface FieldSupport {
  readonly ignored?: readonly string[];
  readonly refused?: Readonly<Record<string, string>>;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class FieldReader {
  private readonly used = new Set<string>();
  private readonly children: FieldReader[] = [];

  /** `where` names the resource ("Cluster 'web'"); `path` is the field path inside it. */
  constructor(
    private readonly obj: Obj,
    readonly where: string,
    readonly path = '',
  ) {}

  private field(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  /** An error naming this resource and `key` (a field path relative to this reader). */
  error(key: string, message: string): ResourceError {
    const field = key === '' ? this.path || '<root>' : this.field(key);
    return new ResourceError(`${this.where}: ${field}: ${message}`, field, message);
  }

  has(key: string): boolean {
    const v = this.obj[key];
    return v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
  }

  /** The raw value, marked as read. */
  raw(key: string): unknown {
    this.used.add(key);
    return this.obj[key];
  }

  /** Accept these fields without acting on them (they do not change where traffic goes). */
  ignore(...keys: string[]): this {
    for (const k of keys) this.used.add(k);
    return this;
  }

  /** Refuse these fields when set, with a reason (clearer than the generic "unsupported"). */
  refuse(key: string, why: string): this {
    if (this.has(key)) throw this.error(key, why);
    this.used.add(key);
    return this;
  }

  /** Applies a support.ts entry: its ignored fields are accepted, its refused fields refused (in table order). */
  declare(support: FieldSupport): this {
    if (support.ignored) this.ignore(...support.ignored);
    if (support.refused) for (const [key, why] of Object.entries(support.refused)) this.refuse(key, why);
    return this;
  }

  string(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw this.error(key, 'expected a string');
    return v;
  }

  requiredString(key: string): string {
    const v = this.string(key);
    if (v === undefined || v === '') throw this.error(key, 'must be set (non-empty)');
    return v;
  }

  number(key: string): number | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.error(key, 'expected a number');
    return v;
  }

  bool(key: string): boolean {
    const v = this.raw(key);
    return v === true;
  }

  /** An enum (as its name); `fallback` when absent (proto3 default). */
  enumOf<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.raw(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
    throw this.error(key, `${String(v)} is not supported (supported: ${allowed.join(', ')})`);
  }

  /** google.protobuf.UInt32Value / BoolValue / DoubleValue etc.: the inner value. */
  wrapped(key: string): number | undefined {
    const m = this.message(key);
    if (!m) return undefined;
    const v = m.number('value');
    return v ?? 0;
  }

  wrappedBool(key: string): boolean | undefined {
    const m = this.message(key);
    if (!m) return undefined;
    return m.bool('value');
  }

  /** google.protobuf.Duration in milliseconds. */
  durationMs(key: string): number | undefined {
    const m = this.message(key);
    if (!m) return undefined;
    const seconds = m.number('seconds') ?? 0;
    const nanos = m.number('nanos') ?? 0;
    if (seconds < 0 || nanos < 0) throw this.error(key, 'negative durations are invalid');
    return seconds * 1000 + nanos / 1e6;
  }

  /** A sub-message reader (checked by the root's finish()), or undefined when absent. */
  message(key: string): FieldReader | undefined {
    const v = this.raw(key);
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) throw this.error(key, 'expected a message');
    const child = new FieldReader(v, this.where, this.field(key));
    this.children.push(child);
    return child;
  }

  /** A repeated message field: one reader per element. */
  list(key: string): FieldReader[] {
    const v = this.raw(key);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw this.error(key, 'expected a list');
    return v.map((item, i) => {
      if (!isObj(item)) throw this.error(`${key}[${i}]`, 'expected a message');
      const child = new FieldReader(item, this.where, `${this.field(key)}[${i}]`);
      this.children.push(child);
      return child;
    });
  }

  stringList(key: string): string[] {
    const v = this.raw(key);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw this.error(key, 'expected a list of strings');
    return v as string[];
  }

  /** A map<string, Message> field: one reader per entry. */
  map(key: string): Map<string, FieldReader> {
    const v = this.raw(key);
    const out = new Map<string, FieldReader>();
    if (v === undefined || v === null) return out;
    if (!isObj(v)) throw this.error(key, 'expected a map');
    for (const [k, item] of Object.entries(v)) {
      if (!isObj(item)) throw this.error(`${key}[${k}]`, 'expected a message');
      const child = new FieldReader(item, this.where, `${this.field(key)}["${k}"]`);
      this.children.push(child);
      out.set(k, child);
    }
    return out;
  }

  /** For a google.protobuf.Any reader: the packed type URL (marks '@type' read). */
  anyType(): string {
    const t = this.raw('@type');
    if (typeof t === 'string' && t !== '') return t;
    // A type the proto root does not know stays {type_url, value}: return its URL, so the caller
    // refuses it by name ("HTTP filter ... is not implemented").
    const url = this.obj.type_url;
    if (typeof url === 'string' && url !== '') {
      this.ignore('type_url', 'value');
      return url;
    }
    throw this.error('', 'typed config without a type');
  }

  /** The plain object behind this reader (for Struct-like values read whole). */
  value(): Obj {
    for (const k of Object.keys(this.obj)) this.used.add(k);
    return this.obj;
  }

  /** Throws naming the first set field nobody read, here or in any sub-reader. */
  finish(): void {
    for (const key of Object.keys(this.obj)) {
      if (!this.used.has(key) && this.has(key)) throw this.error(key, 'unsupported field (the proxy would not honour it)');
    }
    for (const c of this.children) c.finish();
  }
}
