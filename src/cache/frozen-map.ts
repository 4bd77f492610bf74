/**
 * A Map that cannot change after construction. Snapshots hand their maps to many streams and to
 * the admin endpoints; a stray `set` must fail loudly instead of silently changing what one
 * reader sees. In: entries. Out: a read-only Map (still `instanceof Map`, so JSON helpers and
 * iteration work as usual).
 */
export class FrozenMap<K, V> extends Map<K, V> implements ReadonlyMap<K, V> {
  constructor(entries: Iterable<readonly [K, V]>) {
    super();
    for (const [k, v] of entries) super.set(k, v);
    Object.freeze(this);
  }

  override set(key: K): this {
    throw new TypeError(`read-only map: cannot set ${String(key)}`);
  }

  override delete(key: K): boolean {
    throw new TypeError(`read-only map: cannot delete ${String(key)}`);
  }

  override clear(): void {
    throw new TypeError('read-only map: cannot clear');
  }
}
