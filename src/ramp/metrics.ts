/**
 * Ramp metrics for /metrics: current step and canary weight per ramp, decisions by kind, and
 * rollbacks. In: the driver's calls. Out: series on the given prom-client registry (the sidecar's
 * when `serve --ramp-driver` drives; a private one in the foreground `ramp start`).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export class RampMetrics {
  private readonly step: Gauge<'ramp'>;
  private readonly weight: Gauge<'ramp'>;
  private readonly decisions: Counter<'ramp' | 'decision'>;
  private readonly rollbacks: Counter<'ramp'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.step = new Gauge({ name: 'consul_xds_ramp_step', help: 'Steps a ramp has taken', labelNames: ['ramp'], registers });
    this.weight = new Gauge({ name: 'consul_xds_ramp_weight', help: "The canary's weight (percent) a ramp last wrote", labelNames: ['ramp'], registers });
    this.decisions = new Counter({
      name: 'consul_xds_ramp_decisions_total',
      help: 'Gate decisions (pass, wait, breach) by ramp',
      labelNames: ['ramp', 'decision'],
      registers,
    });
    this.rollbacks = new Counter({
      name: 'consul_xds_ramp_rollbacks_total',
      help: 'Canaries rolled back to weight 0 by a breach',
      labelNames: ['ramp'],
      registers,
    });
  }

  position(ramp: string, step: number, weight: number): void {
    this.step.set({ ramp }, step);
    this.weight.set({ ramp }, weight);
  }

  decision(ramp: string, decision: string): void {
    this.decisions.inc({ ramp, decision });
  }

  rollback(ramp: string): void {
    this.rollbacks.inc({ ramp });
  }
}
