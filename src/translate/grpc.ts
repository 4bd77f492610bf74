/**
 * `listener.<authority>` with `type: grpc` -> what a proxyless gRPC client needs: a Listener named
 * after the target authority (`xds:///greeter:50051` asks for `greeter:50051`) that carries an
 * `api_listener` (an HttpConnectionManager taking its routes from RDS over ADS, router filter
 * last), and a RouteConfiguration of the same name holding the one virtual host the client picks
 * for that authority (views.ts `grpcVirtualHost`), with its domains as configured.
 *
 * gRPC routes differ from Envoy's where the client reads other fields: a route `timeout` becomes
 * `max_stream_duration` (gRPC ignores `timeout`), and retries keep only the gRPC status conditions
 * (the client skips the others). validate.ts has already refused what gRPC cannot do (host and
 * header rewrites, mirrors, other lb policies), so nothing here is silently dropped.
 */
import type { Config, GrpcListenerConfig } from '../config/schema.js';
import { GRPC_RETRY_ON } from '../config/schema.js';
import { durationIsZero } from '../config/duration.js';
import { compare, grpcVirtualHost, routeGroups, routeName, type RouteGroup } from '../config/views.js';
import type { ProtoObject } from '../xds/resources.js';
import { clusterAction, retryPolicy, routeMatch } from './routes.js';
import { ADS_SOURCE, AnyType, FilterName } from './type-names.js';

export function apiListener(name: string): ProtoObject {
  return {
    name,
    api_listener: {
      api_listener: {
        '@type': AnyType.HttpConnectionManager,
        // Not read by gRPC, but required by the HCM's validation rules; keep the resource valid.
        stat_prefix: name,
        rds: { route_config_name: name, config_source: ADS_SOURCE },
        http_filters: [{ name: FilterName.Router, typed_config: { '@type': AnyType.Router } }],
      },
    },
  };
}

export function grpcRouteConfiguration(config: Config, name: string, listener: GrpcListenerConfig): ProtoObject {
  const { chosen } = grpcVirtualHost(config, name, listener);
  // validate.ts refuses a grpc listener that matches no virtual host; translate runs it first.
  if (!chosen) throw new Error(`listener ${name}: no virtual host matches (validateConfig should have refused this)`);
  return {
    name,
    virtual_hosts: [
      {
        name: chosen.name,
        domains: [...new Set(chosen.vhost.domain)].sort(compare),
        routes: routeGroups(chosen.vhost).map(grpcRoute),
      },
    ],
  };
}

function grpcRoute(group: RouteGroup): ProtoObject {
  const action = clusterAction(group.members);
  const timeout = group.members.find((m) => m.entry.timeout)?.entry.timeout;
  // 0 means "no timeout" in the config and "the application's deadline" to gRPC: leave it out.
  if (timeout && !durationIsZero(timeout)) action.max_stream_duration = { max_stream_duration: timeout };
  const retry = group.members.find((m) => m.entry.retry)?.entry.retry;
  if (retry) {
    const grpcOnly = retry['retry-on'].filter((c) => (GRPC_RETRY_ON as readonly string[]).includes(c));
    action.retry_policy = retryPolicy(retry, grpcOnly);
  }
  // Paths, regexes and header conditions as for Envoy: grpc-js-xds matches prefix, path and
  // safe_regex on the method path, and header conditions on the call's metadata.
  return { name: routeName(group), match: routeMatch(group), route: action };
}
