/**
 * All upstream clusters of the proxy. In: validated Cluster resources (CDS) and
 * ClusterLoadAssignments (EDS, by service name). Out: `get(name)` for the request path, the EDS
 * names to subscribe to, readiness (every cluster initialized), stats and /clusters data.
 * Several clusters may share one EDS name (eds_cluster_config.service_name); each gets the CLA.
 */
import type { ClusterModel } from '../config/cluster-resource.js';
import type { EndpointsModel } from '../config/endpoint-resource.js';
import { UpstreamCluster, type HealthMode } from './cluster.js';
import type { StatEmitter } from '../stats.js';

export class ClusterManager {
  private readonly clusters = new Map<string, UpstreamCluster>();
  /** Last CLA per EDS name, so a cluster added later (or re-pointed) gets it at once. */
  private readonly assignments = new Map<string, EndpointsModel>();
  private readonly missing = new Set<string>();

  /** How clusters check their hosts' health (workers: one runs the checks, the others follow). */
  constructor(private readonly health: HealthMode = { kind: 'run' }) {}

  get(name: string): UpstreamCluster | undefined {
    return this.clusters.get(name);
  }

  all(): IterableIterator<UpstreamCluster> {
    return this.clusters.values();
  }

  get size(): number {
    return this.clusters.size;
  }

  addOrUpdate(model: ClusterModel): void {
    const existing = this.clusters.get(model.name);
    if (existing) {
      const renamed = existing.model.edsName !== model.edsName;
      existing.update(model);
      if (renamed && model.discovery === 'EDS') this.feed(existing);
      return;
    }
    const cluster = new UpstreamCluster(model, this.health);
    this.clusters.set(model.name, cluster);
    if (model.discovery === 'EDS') this.feed(cluster);
  }

  private feed(cluster: UpstreamCluster): void {
    const cla = this.assignments.get(cluster.model.edsName);
    if (cla) cluster.setEndpoints(cla);
    else if (this.missing.has(cluster.model.edsName)) cluster.endpointsDoNotExist();
  }

  remove(name: string): void {
    const c = this.clusters.get(name);
    if (!c) return;
    this.clusters.delete(name);
    c.close();
    this.forgetUnused();
  }

  /** EDS names of every EDS cluster. */
  edsNames(): Set<string> {
    const names = new Set<string>();
    for (const c of this.clusters.values()) if (c.model.discovery === 'EDS') names.add(c.model.edsName);
    return names;
  }

  private forgetUnused(): void {
    const used = this.edsNames();
    for (const n of this.assignments.keys()) if (!used.has(n)) this.assignments.delete(n);
    for (const n of this.missing) if (!used.has(n)) this.missing.delete(n);
  }

  setEndpoints(edsName: string, cla: EndpointsModel): void {
    this.assignments.set(edsName, cla);
    this.missing.delete(edsName);
    for (const c of this.clusters.values()) {
      if (c.model.discovery === 'EDS' && c.model.edsName === edsName) c.setEndpoints(cla);
    }
  }

  endpointsDoNotExist(edsName: string): void {
    this.missing.add(edsName);
    for (const c of this.clusters.values()) {
      if (c.model.discovery === 'EDS' && c.model.edsName === edsName) c.endpointsDoNotExist();
    }
  }

  allInitialized(): boolean {
    for (const c of this.clusters.values()) if (!c.isInitialized()) return false;
    return true;
  }

  /** Resolves once every cluster that exists now is initialized. */
  async whenInitialized(): Promise<void> {
    await Promise.all([...this.clusters.values()].map((c) => c.whenInitialized()));
  }

  emitStats(emit: StatEmitter): void {
    for (const c of this.clusters.values()) c.emitStats(emit);
    emit('cluster_manager.active_clusters', this.clusters.size);
    emit('cluster_manager.warming_clusters', [...this.clusters.values()].filter((c) => !c.isInitialized()).length);
  }

  close(): void {
    for (const c of this.clusters.values()) c.close();
    this.clusters.clear();
  }
}
