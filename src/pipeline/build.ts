/**
 * Config -> snapshots, the one way every path builds them. In: a Config (or YAML text) and the
 * endpoints per cluster. Out: the translated resources and the encoded, consistency-checked
 * snapshots. `serve`'s publisher, `consul-xds validate` and the `kv` / `weights` writes all call
 * these, so a config the CLI accepts is one `serve` publishes.
 */
import { buildSnapshot, type Snapshot } from '../cache/snapshot.js';
import type { EndpointMap } from '../config/endpoints.js';
import { parseConfig, type ParseOptions } from '../config/parse.js';
import type { Config } from '../config/schema.js';
import { staticEndpoints } from '../config/static-endpoints.js';
import { splitForClients, translate } from '../translate/index.js';
import type { XdsResourceSet } from '../xds/resources.js';

export interface BuiltSnapshots {
  /** What Envoy (and the TS data plane) is sent. */
  readonly envoy: Snapshot;
  /** What proxyless gRPC clients are sent; undefined when the config has no `type: grpc` listener. */
  readonly grpc?: Snapshot;
}

/** Translates `config` with `endpoints` and builds the Envoy and gRPC snapshots (SnapshotError / ConfigError on failure). */
export function buildSnapshots(config: Config, endpoints: EndpointMap): BuiltSnapshots {
  const sets = splitForClients(translate(config, endpoints));
  const envoy = buildSnapshot(sets.envoy);
  return sets.grpc ? { envoy, grpc: buildSnapshot(sets.grpc) } : { envoy };
}

export interface CheckedConfig {
  readonly text: string;
  readonly config: Config;
  /** Envoy resources the config becomes (static endpoints only: Consul health is not consulted). */
  readonly resources: XdsResourceSet;
  /** Every resource encoded and consistency-checked as one snapshot. */
  readonly snapshot: Snapshot;
}

/** Parses, translates and builds the snapshot; throws ConfigError / SnapshotError naming `source` and the path (ConfigTooLargeError over the cap). */
export function checkConfigText(text: string, source: string, opts: ParseOptions = {}): CheckedConfig {
  const config = parseConfig(text, source, opts);
  const resources = translate(config, staticEndpoints(config));
  return Object.freeze({ text, config, resources, snapshot: buildSnapshot(resources) });
}
