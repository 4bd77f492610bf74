/**
 * Freeze a validated value all the way down, so nothing after the edge can mutate the config
 * (fastify's habit: validate once, then trust). In: a plain object tree. Out: the same tree, frozen.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
