/**
 * Earliest-deadline-first scheduling, as Envoy uses for weighted round robin and locality
 * picking. In: items with weights > 0. Out: `next()` returns items in proportion to their
 * weights, smoothly interleaved (weights 3:1 give a a b a, not a a a b), in O(log n).
 */
export class EdfScheduler<T> {
  private readonly heap: Array<{ item: T; deadline: number; step: number; order: number }> = [];

  constructor(items: readonly T[], weights: readonly number[]) {
    items.forEach((item, i) => {
      const w = weights[i] ?? 0;
      if (w > 0) this.push({ item, deadline: 1 / w, step: 1 / w, order: i });
    });
  }

  get size(): number {
    return this.heap.length;
  }

  next(): T | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    top.deadline += top.step;
    this.siftDown(0);
    return top.item;
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    return x.deadline < y.deadline || (x.deadline === y.deadline && x.order < y.order);
  }

  private push(e: { item: T; deadline: number; step: number; order: number }): void {
    this.heap.push(e);
    let i = this.heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [this.heap[i], this.heap[p]] = [this.heap[p]!, this.heap[i]!];
      i = p;
    }
  }

  private siftDown(i: number): void {
    const n = this.heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) return;
      [this.heap[i], this.heap[m]] = [this.heap[m]!, this.heap[i]!];
      i = m;
    }
  }
}
