/**
 * The four xDS resource types we serve, their type URLs and the protocol facts that differ per
 * type (full state in SotW or not, order of delivery on an ADS stream).
 */
export const TYPE_PREFIX = 'type.googleapis.com/';

export const TypeUrl = {
  Cluster: `${TYPE_PREFIX}envoy.config.cluster.v3.Cluster`,
  ClusterLoadAssignment: `${TYPE_PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  Listener: `${TYPE_PREFIX}envoy.config.listener.v3.Listener`,
  RouteConfiguration: `${TYPE_PREFIX}envoy.config.route.v3.RouteConfiguration`,
} as const;

export type XdsTypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/** Delivery order for changes on one ADS stream: CDS -> EDS -> LDS -> RDS. */
export const TYPE_ORDER: readonly XdsTypeUrl[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
];

/** LDS and CDS responses carry the full set in SotW; a name missing from them means deleted. */
export function isFullStateType(typeUrl: string): boolean {
  return typeUrl === TypeUrl.Cluster || typeUrl === TypeUrl.Listener;
}

export function isXdsTypeUrl(typeUrl: string): typeUrl is XdsTypeUrl {
  return (TYPE_ORDER as readonly string[]).includes(typeUrl);
}

/** Short names used in logs, metrics and status output. */
export const TYPE_SHORT: Record<XdsTypeUrl, 'CDS' | 'EDS' | 'LDS' | 'RDS'> = {
  [TypeUrl.Cluster]: 'CDS',
  [TypeUrl.ClusterLoadAssignment]: 'EDS',
  [TypeUrl.Listener]: 'LDS',
  [TypeUrl.RouteConfiguration]: 'RDS',
};

/** Fully qualified message name for a type URL. */
export function messageNameOf(typeUrl: string): string {
  return typeUrl.startsWith(TYPE_PREFIX) ? typeUrl.slice(TYPE_PREFIX.length) : typeUrl;
}
