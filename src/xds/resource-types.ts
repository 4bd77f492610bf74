/**
 * The four xDS resource types we serve, and every fact that differs per type, in one table: type
 * URL, message name, short name, the field that names a resource, where translate puts them, whether
 * a SotW response carries the full set, which type must follow an update so the client finishes
 * warming, and the per-type gRPC service. The cache, the server, the data plane and the commands
 * read these facts from here; nothing else spells them out again.
 *
 * Delivery order is the table's order: CDS -> EDS -> LDS -> RDS (clusters before the endpoints and
 * routes that name them, listeners before their routes).
 */
import type { XdsResourceSet } from './resources.js';

export const TYPE_PREFIX = 'type.googleapis.com/';

export const TypeUrl = {
  Cluster: `${TYPE_PREFIX}envoy.config.cluster.v3.Cluster`,
  ClusterLoadAssignment: `${TYPE_PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  Listener: `${TYPE_PREFIX}envoy.config.listener.v3.Listener`,
  RouteConfiguration: `${TYPE_PREFIX}envoy.config.route.v3.RouteConfiguration`,
} as const;

export type XdsTypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/** Short names used in logs, metrics and status output. */
export type TypeShort = 'CDS' | 'EDS' | 'LDS' | 'RDS';

export interface ResourceType {
  readonly typeUrl: XdsTypeUrl;
  readonly short: TypeShort;
  /** Fully qualified message name, e.g. envoy.config.cluster.v3.Cluster. */
  readonly messageName: string;
  /** The message's own name, for errors that name a resource: 'ClusterLoadAssignment'. */
  readonly label: string;
  /** The same in words, for the snapshot's errors: 'cluster load assignment'. */
  readonly kind: string;
  /** The field holding a resource's name (field 1 of every one of the four messages). */
  readonly nameField: 'name' | 'cluster_name';
  /** Where translate hands the resources of this type to the snapshot. */
  readonly setKey: keyof XdsResourceSet;
  /** SotW: every response is the full (subscribed) set, so a name missing from it means deleted. */
  readonly fullStateInSotw: boolean;
  /**
   * The type whose resources must follow a new or changed resource of this one, even unchanged:
   * Envoy keeps an updated Cluster warming until its ClusterLoadAssignment arrives, and a
   * Listener using RDS until its RouteConfiguration does.
   */
  readonly warms: XdsTypeUrl | undefined;
  /** The per-type gRPC service serving only this type, and its SotW method. */
  readonly service: string;
  readonly sotwMethod: string;
  /** The same service's incremental (delta) method. */
  readonly deltaMethod: string;
}

function entry(e: Omit<ResourceType, 'label' | 'messageName'>): ResourceType {
  const messageName = messageNameOf(e.typeUrl);
  return Object.freeze({ ...e, messageName, label: messageName.slice(messageName.lastIndexOf('.') + 1) });
}

/** The types in delivery order. */
export const RESOURCE_TYPES: readonly ResourceType[] = Object.freeze([
  entry({
    typeUrl: TypeUrl.Cluster,
    short: 'CDS',
    kind: 'cluster',
    nameField: 'name',
    setKey: 'clusters',
    fullStateInSotw: true,
    warms: TypeUrl.ClusterLoadAssignment,
    service: 'envoy.service.cluster.v3.ClusterDiscoveryService',
    sotwMethod: 'StreamClusters',
    deltaMethod: 'DeltaClusters',
  }),
  entry({
    typeUrl: TypeUrl.ClusterLoadAssignment,
    short: 'EDS',
    kind: 'cluster load assignment',
    nameField: 'cluster_name',
    setKey: 'endpoints',
    fullStateInSotw: false,
    warms: undefined,
    service: 'envoy.service.endpoint.v3.EndpointDiscoveryService',
    sotwMethod: 'StreamEndpoints',
    deltaMethod: 'DeltaEndpoints',
  }),
  entry({
    typeUrl: TypeUrl.Listener,
    short: 'LDS',
    kind: 'listener',
    nameField: 'name',
    setKey: 'listeners',
    fullStateInSotw: true,
    warms: TypeUrl.RouteConfiguration,
    service: 'envoy.service.listener.v3.ListenerDiscoveryService',
    sotwMethod: 'StreamListeners',
    deltaMethod: 'DeltaListeners',
  }),
  entry({
    typeUrl: TypeUrl.RouteConfiguration,
    short: 'RDS',
    kind: 'route configuration',
    nameField: 'name',
    setKey: 'routes',
    fullStateInSotw: false,
    warms: undefined,
    service: 'envoy.service.route.v3.RouteDiscoveryService',
    sotwMethod: 'StreamRoutes',
    deltaMethod: 'DeltaRoutes',
  }),
]);

const BY_URL: ReadonlyMap<string, ResourceType> = new Map(RESOURCE_TYPES.map((t) => [t.typeUrl, t]));

/** The facts about one type. */
export function resourceType(typeUrl: XdsTypeUrl): ResourceType {
  return BY_URL.get(typeUrl) as ResourceType;
}

/** Delivery order for changes on one ADS stream: CDS -> EDS -> LDS -> RDS. */
export const TYPE_ORDER: readonly XdsTypeUrl[] = Object.freeze(RESOURCE_TYPES.map((t) => t.typeUrl));

export const TYPE_SHORT: Readonly<Record<XdsTypeUrl, TypeShort>> = Object.freeze(
  Object.fromEntries(RESOURCE_TYPES.map((t) => [t.typeUrl, t.short])) as Record<XdsTypeUrl, TypeShort>,
);

/** LDS and CDS responses carry the full set in SotW; a name missing from them means deleted. */
export function isFullStateType(typeUrl: string): boolean {
  return BY_URL.get(typeUrl)?.fullStateInSotw ?? false;
}

export function isXdsTypeUrl(typeUrl: string): typeUrl is XdsTypeUrl {
  return BY_URL.has(typeUrl);
}

/** Fully qualified message name for a type URL. */
export function messageNameOf(typeUrl: string): string {
  return typeUrl.startsWith(TYPE_PREFIX) ? typeUrl.slice(TYPE_PREFIX.length) : typeUrl;
}
