/**
 * What the proxy does with each field of the xDS messages it reads, in one table. In: nothing (it
 * is data). Out: per message (a resource type, or resource type and field path), the fields it
 * `ignored` (accepted, not acted on: stat names, metadata, tuning that changes no routing) and
 * the fields it `refused` (set -> the resource is NACKed with the reason). The readers apply an
 * entry with `FieldReader.declare()` where they start reading that message; every other field
 * is either read by them or, when set, refused by `finish()` as unsupported. Refusals that
 * depend on other fields (a STATIC cluster's load_assignment, ...) stay with the reader's code.
 */
import type { FieldSupport } from './field-reader.js';

export const SUPPORT = {
  Cluster: {
    ignored: [
      'alt_stat_name',
      'metadata',
      'per_connection_buffer_limit_bytes',
      'cleanup_interval',
      'track_timeout_budgets',
      'track_cluster_stats',
      // Failed resolutions are retried at dns_refresh_rate.
      'dns_failure_refresh_rate',
      'use_tcp_for_dns_lookups',
      'wait_for_warm_on_init',
      'upstream_connection_options',
      'close_connections_on_host_health_failure',
      'ignore_health_on_host_removal',
      'preconnect_policy',
      'lrs_server',
      'set_local_interface_name_on_upstream_connections',
      'http_protocol_options',
      'upstream_http_protocol_options',
    ],
    refused: {
      cluster_type: 'custom cluster types are not implemented',
      transport_socket_matches: 'transport socket matches are not implemented (set transport_socket)',
      lb_subset_config: 'subset load balancing is not implemented',
      load_balancing_policy: 'load_balancing_policy extensions are not implemented (use lb_policy)',
      original_dst_lb_config: 'ORIGINAL_DST is not implemented',
      upstream_bind_config: 'upstream_bind_config is not implemented',
      filters: 'upstream network filters are not implemented',
      connection_pool_per_downstream_connection: 'per-downstream connection pools are not implemented',
      dns_resolvers: 'DNS is not implemented',
      dns_resolution_config: 'DNS is not implemented',
      typed_dns_resolver_config: 'DNS is not implemented',
      protocol_selection: 'USE_DOWNSTREAM_PROTOCOL is not implemented',
    },
  },
  // Our ring uses its own 32-bit hash; which function builds the ring does not change its contract.
  'Cluster.ring_hash_lb_config': {
    ignored: ['hash_function'],
  },
  'Cluster.least_request_lb_config.active_request_bias': {
    ignored: ['runtime_key'],
  },
  'Cluster.least_request_lb_config': {
    refused: {
      slow_start_config: 'slow start is not implemented',
    },
  },
  'Cluster.round_robin_lb_config': {
    refused: {
      slow_start_config: 'slow start is not implemented',
    },
  },
  // Zone-aware routing needs a local cluster, which our bootstrap never names: Envoy does nothing either.
  'Cluster.common_lb_config': {
    ignored: ['zone_aware_lb_config', 'update_merge_window', 'close_connections_on_host_set_change'],
    refused: {
      ignore_new_hosts_until_first_hc: 'not implemented',
      consistent_hashing_lb_config: 'not implemented',
      override_host_status: 'not implemented',
    },
  },
  ConfigSource: {
    ignored: ['initial_fetch_timeout', 'authorities'],
  },
  // Also HttpProtocolOptions.explicit_http_config.http2_protocol_options (one reader for both).
  'Cluster.http2_protocol_options': {
    ignored: [
      'initial_stream_window_size',
      'initial_connection_window_size',
      'hpack_table_size',
      'connection_keepalive',
      'allow_connect',
      'max_outbound_frames',
      'max_outbound_control_frames',
      'max_consecutive_inbound_frames_with_empty_payload',
      'max_inbound_priority_frames_per_stream',
      'max_inbound_window_update_frames_per_data_frame_sent',
      'override_stream_error_on_invalid_http_message',
    ],
  },
  // Also HttpProtocolOptions.common_http_protocol_options.
  'Cluster.common_http_protocol_options': {
    ignored: ['max_connection_duration', 'max_headers_count', 'max_stream_duration', 'headers_with_underscores_action', 'max_response_headers_kb'],
  },
  'HttpProtocolOptions.explicit_http_config': {
    ignored: ['http_protocol_options'],
    refused: {
      http3_protocol_options: 'HTTP/3 is not implemented',
    },
  },
  HttpProtocolOptions: {
    ignored: ['upstream_http_protocol_options'],
    refused: {
      use_downstream_protocol_config: 'use_downstream_protocol_config is not implemented',
      auto_config: 'auto_config (protocol by ALPN) is not implemented',
      http_filters: 'upstream HTTP filters are not implemented',
      header_validation_config: 'not implemented',
    },
  },
  'Cluster.health_checks': {
    ignored: [
      'interval_jitter_percent',
      'event_log_path',
      'event_service',
      'event_logger',
      'always_log_health_check_failures',
      'always_log_health_check_success',
    ],
    refused: {
      alt_port: 'alt_port is not implemented',
      tls_options: 'tls_options are not implemented (the check uses the cluster transport_socket)',
      transport_socket_match_criteria: 'transport socket matches are not implemented',
      grpc_health_check: 'gRPC health checks are not implemented',
      custom_health_check: 'custom health checks are not implemented',
    },
  },
  'Cluster.health_checks.http_health_check': {
    refused: {
      send: 'request payloads are not implemented',
      receive: 'response matching is not implemented',
      request_headers_to_add: 'not implemented',
      request_headers_to_remove: 'not implemented',
      retriable_statuses: 'not implemented',
      service_name_matcher: 'not implemented',
    },
  },
  'Cluster.health_checks.tcp_health_check': {
    refused: {
      send: 'payload checks are not implemented',
      receive: 'payload checks are not implemented',
    },
  },
  'Cluster.outlier_detection': {
    ignored: [
      'consecutive_local_origin_failure',
      'enforcing_consecutive_local_origin_failure',
      'enforcing_local_origin_success_rate',
      'failure_percentage_threshold',
      'enforcing_failure_percentage_local_origin',
      'max_ejection_time_jitter',
    ],
    refused: {
      always_eject_one_host: 'not implemented',
    },
  },
  'Cluster.circuit_breakers': {
    refused: {
      per_host_thresholds: 'per-host circuit breakers are not implemented',
    },
  },
  'Cluster.circuit_breakers.thresholds': {
    ignored: ['track_remaining', 'max_connection_pools'],
    refused: {
      retry_budget: 'retry budgets are not implemented',
    },
  },
  'ClusterLoadAssignment.policy': {
    ignored: ['endpoint_stale_after', 'weighted_priority_health'],
    refused: {
      drop_overloads: 'drop_overloads is not implemented (the proxy never drops traffic on purpose)',
    },
  },
  ClusterLoadAssignment: {
    refused: {
      named_endpoints: 'named endpoints are not implemented',
    },
  },
  'ClusterLoadAssignment.endpoints': {
    ignored: ['metadata', 'proximity'],
    refused: {
      leds_cluster_locality_config: 'LEDS is not implemented',
    },
  },
  'ClusterLoadAssignment.endpoints.lb_endpoints': {
    ignored: ['metadata'],
    refused: {
      endpoint_name: 'named endpoints are not implemented',
    },
  },
  'ClusterLoadAssignment.endpoints.lb_endpoints.endpoint': {
    refused: {
      health_check_config: 'per-endpoint health-check overrides are not implemented',
      additional_addresses: 'additional addresses are not implemented',
    },
  },
  Address: {
    refused: {
      pipe: 'unix pipes are not implemented',
      envoy_internal_address: 'internal addresses are not implemented',
    },
  },
  'Address.socket_address': {
    ignored: ['ipv4_compat'],
    refused: {
      named_port: 'named ports are not implemented',
      resolver_name: 'custom resolvers are not implemented',
    },
  },
  Listener: {
    ignored: [
      'stat_prefix',
      'metadata',
      'per_connection_buffer_limit_bytes',
      'drain_type',
      'tcp_fast_open_queue_length',
      'traffic_direction',
      'connection_balance_config',
      'reuse_port',
      'enable_reuse_port',
      'tcp_backlog_size',
      'freebind',
      'ignore_global_conn_limit',
      'max_connections_to_accept_per_socket_event',
      'bypass_overload_manager',
    ],
    refused: {
      additional_addresses: 'additional addresses are not implemented',
      filter_chain_matcher: 'filter chain matching is not implemented',
      default_filter_chain: 'default filter chains are not implemented',
      use_original_dst: 'original destination is not implemented',
      listener_filters: 'listener filters are not implemented',
      transparent: 'transparent listeners are not implemented',
      socket_options: 'socket options are not implemented',
      udp_listener_config: 'UDP is not implemented',
      api_listener: 'API listeners are for proxyless gRPC clients, not for a proxy',
      internal_listener: 'internal listeners are not implemented',
      access_log: 'listener-level access logs are not implemented (configure them on the HCM or TCP proxy)',
      enable_mptcp: 'MPTCP is not implemented',
      deprecated_v1: 'not implemented',
    },
  },
  'Listener.filter_chains': {
    ignored: ['name', 'metadata'],
    refused: {
      use_proxy_proto: 'PROXY protocol is not implemented',
      on_demand_configuration: 'not implemented',
    },
  },
  // envoy.transport_sockets.tls (tls-context.ts). SDS and providers are refused: the proxy reads files only.
  UpstreamTlsContext: {
    // Session-resumption tuning: how many tickets are cached changes no peer or verification.
    ignored: ['max_session_keys'],
    refused: {
      allow_renegotiation: 'TLS renegotiation is not implemented',
      enforce_rsa_key_usage: 'not implemented',
      auto_host_sni: 'auto_host_sni is not implemented (set sni)',
      auto_sni_san_validation: 'auto_sni_san_validation is not implemented (use match_typed_subject_alt_names)',
    },
  },
  DownstreamTlsContext: {
    ignored: ['disable_stateless_session_resumption', 'disable_stateful_session_resumption', 'session_timeout', 'ocsp_staple_policy', 'prefer_client_ciphers'],
    refused: {
      require_sni: 'require_sni is not implemented',
      session_ticket_keys: 'session ticket keys are not implemented',
      session_ticket_keys_sds_secret_config: 'SDS is not implemented (use file-based certificates)',
      full_scan_certs_on_sni_mismatch: 'certificate selection by SNI is not implemented',
    },
  },
  CommonTlsContext: {
    refused: {
      tls_params: 'tls_params are not implemented (node defaults: TLS 1.2 to 1.3)',
      tls_certificate_sds_secret_configs: 'SDS is not implemented (use file-based certificates)',
      validation_context_sds_secret_config: 'SDS is not implemented (use validation_context with a file)',
      combined_validation_context: 'SDS is not implemented (use validation_context with a file)',
      tls_certificate_provider_instance: 'certificate providers are not implemented',
      tls_certificate_certificate_provider: 'certificate providers are not implemented',
      tls_certificate_certificate_provider_instance: 'certificate providers are not implemented',
      validation_context_certificate_provider: 'certificate providers are not implemented',
      validation_context_certificate_provider_instance: 'certificate providers are not implemented',
      custom_handshaker: 'custom handshakers are not implemented',
      key_log: 'TLS key logging is not implemented',
      custom_tls_certificate_selector: 'not implemented',
    },
  },
  TlsCertificate: {
    refused: {
      watched_directory: 'certificate rotation by watched_directory is not implemented',
      pkcs12: 'PKCS#12 is not implemented (use certificate_chain and private_key)',
      private_key_provider: 'private key providers are not implemented',
      password: 'encrypted private keys are not implemented',
      ocsp_staple: 'OCSP stapling is not implemented',
      signed_certificate_timestamp: 'not implemented',
    },
  },
  CertificateValidationContext: {
    refused: {
      watched_directory: 'CA rotation by watched_directory is not implemented',
      ca_certificate_provider_instance: 'certificate providers are not implemented',
      system_root_certs: 'system root certificates are not implemented (name a trusted_ca file)',
      verify_certificate_spki: 'not implemented',
      verify_certificate_hash: 'not implemented',
      match_subject_alt_names: 'use match_typed_subject_alt_names',
      require_signed_certificate_timestamp: 'not implemented',
      crl: 'CRLs are not implemented',
      allow_expired_certificate: 'not implemented',
      custom_validator_config: 'custom validators are not implemented',
      only_verify_leaf_cert_crl: 'CRLs are not implemented',
      max_verify_depth: 'not implemented',
    },
  },
  'Listener.filter_chains.filters': {
    ignored: ['name'],
    refused: {
      config_discovery: 'filter config discovery is not implemented',
    },
  },
  // No runtime here: the flag's default value decides.
  'ConnectionLimit.runtime_enabled': {
    ignored: ['runtime_key'],
  },
  HttpConnectionManager: {
    ignored: [
      'http_protocol_options',
      'add_user_agent',
      'tracing',
      'server_name',
      'server_header_transformation',
      'scheme_header_transformation',
      'drain_timeout',
      'delayed_close_timeout',
      'internal_address_config',
      'via',
      'preserve_external_request_id',
      'always_set_request_id_in_response',
      'forward_client_cert_details',
      'set_current_client_cert_details',
      'proxy_100_continue',
      'represent_ipv4_remote_address_as_ipv4_mapped_ipv6',
      'request_id_extension',
      'stream_error_on_invalid_http_message',
      'proxy_status_config',
      'append_x_forwarded_port',
      'add_proxy_protocol_connection_state',
      'strip_trailing_host_dot',
      'append_local_overload',
    ],
    refused: {
      scoped_routes: 'scoped routes are not implemented',
      original_ip_detection_extensions: 'not implemented',
      early_header_mutation_extensions: 'not implemented',
      local_reply_config: 'local reply mapping is not implemented',
      typed_header_validation_config: 'not implemented',
      path_with_escaped_slashes_action: 'not implemented',
      http3_protocol_options: 'HTTP/3 is not implemented',
    },
  },
  'HttpConnectionManager.http_filters': {
    ignored: ['is_optional', 'disabled'],
    refused: {
      config_discovery: 'filter config discovery is not implemented',
    },
  },
  Router: {
    ignored: ['dynamic_stats', 'start_child_span', 'suppress_envoy_headers', 'suppress_grpc_request_failure_code_stats'],
    refused: {
      upstream_log: 'upstream access logs are not implemented',
      upstream_http_filters: 'upstream HTTP filters are not implemented',
      strict_check_headers: 'not implemented',
      respect_expected_rq_timeout: 'not implemented',
    },
  },
  'HttpConnectionManager.common_http_protocol_options': {
    ignored: ['max_connection_duration', 'max_headers_count', 'headers_with_underscores_action', 'max_requests_per_connection', 'max_response_headers_kb'],
    refused: {
      max_stream_duration: 'not implemented',
    },
  },
  'HttpConnectionManager.http2_protocol_options': {
    ignored: [
      'initial_stream_window_size',
      'initial_connection_window_size',
      'hpack_table_size',
      'connection_keepalive',
      'max_outbound_frames',
      'max_outbound_control_frames',
      'max_consecutive_inbound_frames_with_empty_payload',
      'max_inbound_priority_frames_per_stream',
      'max_inbound_window_update_frames_per_data_frame_sent',
      'override_stream_error_on_invalid_http_message',
      'stream_error_on_invalid_http_messaging',
    ],
    refused: {
      allow_connect: 'CONNECT is not implemented',
    },
  },
  'HttpConnectionManager.upgrade_configs': {
    refused: {
      filters: 'not implemented',
    },
  },
  TcpProxy: {
    ignored: ['access_log_flush_interval', 'access_log_options', 'backoff_options', 'flush_access_log_on_connected'],
    refused: {
      on_demand: 'on-demand clusters are not implemented',
      metadata_match: 'subset load balancing is not implemented',
      tunneling_config: 'tunneling is not implemented',
      max_downstream_connection_duration: 'not implemented',
      downstream_idle_timeout: 'not implemented',
      upstream_idle_timeout: 'not implemented',
    },
  },
  'TcpProxy.weighted_clusters.clusters': {
    refused: {
      metadata_match: 'subset load balancing is not implemented',
    },
  },
  'TcpProxy.hash_policy': {
    refused: {
      filter_state: 'not implemented',
    },
  },
  RuntimeFractionalPercent: {
    ignored: ['runtime_key'],
  },
  RouteConfiguration: {
    ignored: ['validate_clusters', 'max_direct_response_body_size_bytes', 'metadata'],
    refused: {
      request_headers_to_add: 'header mutations are implemented on routes and weighted clusters, not here',
      request_headers_to_remove: 'header mutations are implemented on routes and weighted clusters, not here',
      response_headers_to_add: 'header mutations are implemented on routes and weighted clusters, not here',
      response_headers_to_remove: 'header mutations are implemented on routes and weighted clusters, not here',
      internal_only_headers: 'header mutations are not implemented',
      vhds: 'VHDS is not implemented',
      cluster_specifier_plugins: 'cluster specifier plugins are not implemented',
      typed_per_filter_config: 'per-filter config is not implemented (the router is the only filter)',
      request_mirror_policies: 'route-configuration-level mirror policies are not implemented (set them on the route)',
      ignore_path_parameters_in_path_matching: 'not implemented',
    },
  },
  VirtualHost: {
    ignored: [
      'virtual_clusters',
      'metadata',
      'per_request_buffer_limit_bytes',
      'include_request_attempt_count',
      'include_attempt_count_in_response',
      'include_is_timeout_retry_header',
    ],
    refused: {
      request_headers_to_add: 'header mutations are implemented on routes and weighted clusters, not here',
      request_headers_to_remove: 'header mutations are implemented on routes and weighted clusters, not here',
      response_headers_to_add: 'header mutations are implemented on routes and weighted clusters, not here',
      response_headers_to_remove: 'header mutations are implemented on routes and weighted clusters, not here',
      rate_limits: 'rate limiting is not implemented',
      cors: 'CORS is not implemented',
      typed_per_filter_config: 'per-filter config is not implemented (the router is the only filter)',
      hedge_policy: 'hedging is not implemented',
      retry_policy_typed_config: 'not implemented',
      matcher: 'generic matchers are not implemented (use routes)',
    },
  },
  Route: {
    ignored: ['metadata', 'decorator', 'tracing', 'per_request_buffer_limit_bytes', 'stat_prefix'],
    refused: {
      typed_per_filter_config: 'per-filter config is not implemented (the router is the only filter)',
      filter_action: 'filter actions are not implemented',
      non_forwarding_action: 'non-forwarding actions are not implemented',
    },
  },
  'Route.match': {
    refused: {
      connect_matcher: 'CONNECT is not implemented',
      path_match_policy: 'path match policies are not implemented',
      tls_context: 'TLS is not implemented',
      dynamic_metadata: 'dynamic metadata matching is not implemented',
      filter_state: 'filter state matching is not implemented',
    },
  },
  'Route.match.query_parameters': {
    ignored: ['present_match'],
  },
  'RouteAction.request_mirror_policies': {
    ignored: ['trace_sampled'],
    refused: {
      cluster_header: 'mirroring to a cluster named by a header is not implemented',
    },
  },
  'RouteAction.hash_policy': {
    refused: {
      filter_state: 'filter-state hashing is not implemented',
    },
  },
  'RouteAction.hash_policy.header': {
    refused: {
      regex_rewrite: 'not implemented',
    },
  },
  'RouteAction.hash_policy.cookie': {
    ignored: ['path'],
    refused: {
      ttl: 'generated cookies are not implemented',
      attributes: 'generated cookies are not implemented',
    },
  },
  RouteAction: {
    ignored: ['include_vh_rate_limits', 'early_data_policy'],
    refused: {
      cluster_specifier_plugin: 'cluster specifier plugins are not implemented',
      inline_cluster_specifier_plugin: 'cluster specifier plugins are not implemented',
      metadata_match: 'subset load balancing is not implemented',
      path_rewrite_policy: 'path rewrite policies are not implemented',
      host_rewrite_path_regex: 'not implemented',
      append_x_forwarded_host: 'not implemented',
      idle_timeout: 'per-route idle timeouts are not implemented',
      retry_policy_typed_config: 'not implemented',
      rate_limits: 'rate limiting is not implemented',
      cors: 'CORS is not implemented',
      max_grpc_timeout: 'not implemented',
      grpc_timeout_offset: 'not implemented',
      internal_redirect_policy: 'internal redirects are not implemented',
      internal_redirect_action: 'internal redirects are not implemented',
      max_internal_redirects: 'internal redirects are not implemented',
      hedge_policy: 'hedging is not implemented',
      max_stream_duration: 'not implemented',
    },
  },
  'RouteAction.weighted_clusters.clusters': {
    refused: {
      cluster_header: 'not implemented',
      metadata_match: 'subset load balancing is not implemented',
      typed_per_filter_config: 'per-filter config is not implemented',
    },
  },
  'RouteAction.weighted_clusters': {
    ignored: ['runtime_key_prefix'],
    refused: {
      header_name: 'header-driven weighted selection is not implemented',
    },
  },
  'RouteAction.upgrade_configs': {
    refused: {
      connect_config: 'CONNECT is not implemented',
    },
  },
  RedirectAction: {
    refused: {
      regex_rewrite: 'regex rewrites in redirects are not implemented',
    },
  },
  'DirectResponseAction.body': {
    refused: {
      filename: 'bodies from files are not implemented (use inline_string)',
      environment_variable: 'bodies from environment variables are not implemented',
    },
  },
  RetryPolicy: {
    refused: {
      per_try_idle_timeout: 'not implemented',
      retry_priority: 'retry priorities are not implemented',
      retry_options_predicates: 'not implemented',
      rate_limited_retry_back_off: 'not implemented',
      retriable_headers: 'retriable headers are not implemented',
      retriable_request_headers: 'retriable request headers are not implemented',
    },
  },
  'RetryPolicy.retry_host_predicate': {
    ignored: ['typed_config'],
  },
  AccessLog: {
    ignored: ['name'],
    refused: {
      filter: 'access-log filters are not implemented',
    },
  },
  'CommonGrpcAccessLogConfig.grpc_service': {
    ignored: ['timeout', 'initial_metadata', 'retry_policy'],
    refused: {
      google_grpc: 'google_grpc is not implemented (use envoy_grpc)',
    },
  },
  'CommonGrpcAccessLogConfig.grpc_service.envoy_grpc': {
    ignored: ['authority', 'retry_policy', 'max_receive_message_length', 'skip_envoy_headers'],
  },
  CommonGrpcAccessLogConfig: {
    ignored: ['filter_state_objects_to_log', 'grpc_stream_retry_policy', 'custom_tags'],
  },
  HttpGrpcAccessLogConfig: {
    ignored: ['additional_response_trailers_to_log', 'filter_state_objects_to_log'],
  },
  FileAccessLog: {
    refused: {
      typed_json_format: 'typed_json_format is not implemented (use log_format.json_format)',
    },
  },
  RegexMatcher: {
    ignored: ['google_re2'],
  },
  StringMatcher: {
    refused: {
      custom: 'custom string matchers are not implemented',
    },
  },
  SubstitutionFormatString: {
    ignored: ['content_type', 'json_format_options'],
    refused: {
      formatters: 'formatter extensions are not implemented',
    },
  },
  'SubstitutionFormatString.text_format_source': {
    refused: {
      filename: 'formats from files are not implemented',
      environment_variable: 'not implemented',
    },
  },
} as const satisfies Readonly<Record<string, FieldSupport>>;
