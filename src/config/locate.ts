/**
 * Where a config path sits in the YAML text. In: the parsed YAML Document, its LineCounter and a
 * path such as ['cluster', 'loadbalancer', 'web-api-go', 'health-check', 'interval']. Out: the
 * 1-based line and column of the value there, or of the key when asked for the key, or of the
 * nearest enclosing node when the path does not exist in the file (a missing required key).
 */
import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export interface Position {
  readonly line: number;
  readonly col: number;
}

export function locate(doc: Document, lines: LineCounter, path: readonly PropertyKey[], opts: { key?: boolean } = {}): Position | undefined {
  let node: unknown = doc.contents;
  let best: Node | undefined = isNode(node) ? node : undefined;
  // Deepest key (or list item) matched so far: a missing child is reported there.
  let parentKey: Node | undefined;
  let resolved = true;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) {
        resolved = false;
        break;
      }
      if (last && opts.key && isNode(pair.key)) {
        best = pair.key;
        break;
      }
      // Point at the value, except where the key reads better: `key:` with no value, and block
      // collections (their range starts on the next line, at their first child).
      if (isNode(pair.value) && !isEmptyScalar(pair.value) && !isBlockCollection(pair.value)) {
        best = pair.value;
      } else if (isNode(pair.key)) {
        best = pair.key;
      }
      if (isNode(pair.key)) parentKey = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (!isNode(item)) {
        resolved = false;
        break;
      }
      best = item;
      parentKey = item;
      node = item;
    } else {
      resolved = false;
      break;
    }
  }
  if (!resolved && parentKey) best = parentKey;
  const offset = best?.range?.[0];
  if (offset === undefined) return undefined;
  const pos = lines.linePos(offset);
  return { line: pos.line, col: pos.col };
}

function isEmptyScalar(node: Node): boolean {
  return isScalar(node) && node.value === null && node.range?.[0] === node.range?.[1];
}

function isBlockCollection(node: Node): boolean {
  return (isMap(node) || isSeq(node)) && !node.flow;
}

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && 'range' in value;
}
