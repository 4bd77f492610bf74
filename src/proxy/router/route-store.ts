/**
 * RouteConfigurations by name (RDS). In: validated RouteConfigModels, or "does not exist" after
 * the timeout. Out: one slot per name that HTTP listeners read on every request, so an RDS
 * update reaches every listener using it at once without touching connections; `whenReady`
 * lets a listener wait (warm) until its routes are known.
 */
import type { RouteConfigModel } from '../config/route-resource.js';
import { RouteTable } from './route-table.js';

export class RouteSlotEntry {
  routeTable: RouteTable | undefined;
  ready = false;
  updated = new Date();
  version = '';
  private waiters: Array<() => void> = [];

  constructor(readonly name: string) {}

  set(model: RouteConfigModel, version: string): void {
    this.routeTable = new RouteTable(model);
    this.version = version;
    this.updated = new Date();
    this.markReady();
  }

  /** RDS never answered: route nothing (every request gets 404), as Envoy does. */
  doesNotExist(): void {
    if (this.ready) return;
    this.routeTable = new RouteTable({ name: this.name, virtualHosts: [], ignorePortInHostMatching: false, mostSpecificHeaderMutationsWins: false });
    this.markReady();
  }

  private markReady(): void {
    this.ready = true;
    for (const w of this.waiters.splice(0)) w();
  }

  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

export class RouteStore {
  private readonly slots = new Map<string, RouteSlotEntry>();

  slot(name: string): RouteSlotEntry {
    let s = this.slots.get(name);
    if (!s) {
      s = new RouteSlotEntry(name);
      this.slots.set(name, s);
    }
    return s;
  }

  set(name: string, model: RouteConfigModel, version: string): void {
    this.slot(name).set(model, version);
  }

  doesNotExist(name: string): void {
    this.slot(name).doesNotExist();
  }

  /** Drops slots no listener uses any more. */
  retain(names: ReadonlySet<string>): void {
    for (const n of this.slots.keys()) if (!names.has(n)) this.slots.delete(n);
  }

  entries(): IterableIterator<RouteSlotEntry> {
    return this.slots.values();
  }
}
