/**
 * `consul-xds status`: the connected xDS clients as a table, one row per node: node id, node
 * group, protocol (and RPC), per type the version last sent / ACKed, and the last NACK. In: a
 * running server's admin port (GET /status/clients) or its xDS port (CSDS FetchClientStatus,
 * src/server/csds.ts). Out: the table on stdout; exit 0, or 1 when the server cannot be asked.
 *
 * CSDS carries what each node ACKed, per resource, and the NACK, but neither the version sent
 * and not yet answered nor the protocol: those cells show '?' from --csds. Over TLS (--csds-tls-*)
 * the command presents a client certificate; with mTLS the server shows only the nodes that
 * certificate may read (all of them for an operator SAN, serve's --csds-admin-san).
 */
import { Client, credentials, type ChannelCredentials, type ChannelOptions, type ServiceError } from '@grpc/grpc-js';
import { messageType, TO_OBJECT } from '../envoy/protos.js';
import { ConsulXdsError } from '../errors.js';
import { TYPE_ORDER, TYPE_SHORT, type TypeShort, isXdsTypeUrl } from '../xds/resource-types.js';
import { CSDS_SERVICE } from '../server/csds.js';
import { readPem } from '../common/tls-files.js';
import { parseCommandArgs } from './args.js';

const DEFAULT_ADMIN = 'http://127.0.0.1:9002';

const USAGE = `Usage: consul-xds status [--admin URL | --csds HOST:PORT [--csds-tls-* ...]] [--node ID]

Prints every connected xDS client: node, group, protocol, per type (CDS EDS LDS RDS) the version
sent/ACKed (first 8 characters; '-' none yet, '?' not known), and the last NACK.

  --admin URL       the server's admin HTTP base URL (GET /status/clients; default ${DEFAULT_ADMIN})
  --csds HOST:PORT  ask the xDS port's Client Status Discovery Service instead
  --node ID         only this node

CSDS over TLS (the xDS port with --xds-tls-cert; any of these turns TLS on):
  --csds-tls-ca FILE           CA the server's certificate must chain to (default: the system's roots)
  --csds-tls-cert FILE         client certificate to present (mTLS), with --csds-tls-key; under mTLS
  --csds-tls-key FILE          CSDS shows only the nodes it may read, every node for a SAN the server
                               names with --csds-admin-san
  --csds-tls-server-name NAME  name the server's certificate must carry (default: the host of --csds)
`;

/** One table row. */
export interface ClientRow {
  readonly node: string;
  readonly group: string;
  readonly protocol: string;
  readonly types: Readonly<Partial<Record<TypeShort, { readonly sent?: string; readonly acked?: string }>>>;
  readonly lastNack?: string;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    'status',
    argv,
    {
      admin: { type: 'string' },
      csds: { type: 'string' },
      node: { type: 'string' },
      'csds-tls-ca': { type: 'string' },
      'csds-tls-cert': { type: 'string' },
      'csds-tls-key': { type: 'string' },
      'csds-tls-server-name': { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.admin !== undefined && values.csds !== undefined) throw new ConsulXdsError('CXDS_USAGE', `status: give --admin or --csds, not both\n\n${USAGE}`);
  const tls = csdsTlsOptions(values);
  if (tls !== undefined && values.csds === undefined) throw new ConsulXdsError('CXDS_USAGE', `status: the --csds-tls-* flags go with --csds\n\n${USAGE}`);
  const rows =
    values.csds !== undefined
      ? await fromCsds(values.csds, values.node, tls !== undefined ? await csdsCredentials(tls) : undefined)
      : await fromAdmin(values.admin ?? DEFAULT_ADMIN, values.node);
  process.stdout.write(formatTable(rows));
  return 0;
}

/** The shape of GET /status/clients this command reads (src/admin/admin-server.ts clientStatus). */
interface ClientsJson {
  readonly nodes: ReadonlyArray<{
    readonly nodeId: string;
    readonly group: string;
    readonly types: Readonly<
      Partial<
        Record<
          TypeShort,
          { readonly sentVersion?: string; readonly ackedVersion?: string; readonly lastNack?: { readonly message: string; readonly at: string } }
        >
      >
    >;
  }>;
  readonly streams: ReadonlyArray<{ readonly nodeId: string; readonly method: string; readonly protocol?: string }>;
}

async function fromAdmin(base: string, only: string | undefined): Promise<ClientRow[]> {
  const url = `${base.replace(/\/+$/, '')}/status/clients`;
  let body: ClientsJson;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = (await res.json()) as ClientsJson;
  } catch (err) {
    throw new ConsulXdsError('CXDS_STATUS_UNREACHABLE', `status: cannot read ${url}: ${(err as Error).message}`);
  }
  return body.nodes
    .filter((n) => only === undefined || n.nodeId === only)
    .map((n) => {
      const protocols = new Set(body.streams.filter((s) => s.nodeId === n.nodeId).map((s) => `${s.protocol ?? 'sotw'} ${s.method}`));
      let lastNack: { type: TypeShort; message: string; at: string } | undefined;
      const types: Partial<Record<TypeShort, { sent?: string; acked?: string }>> = {};
      for (const [type, st] of Object.entries(n.types) as Array<[TypeShort, NonNullable<ClientsJson['nodes'][number]['types'][TypeShort]>]>) {
        types[type] = { sent: st.sentVersion, acked: st.ackedVersion };
        if (st.lastNack && (lastNack === undefined || st.lastNack.at > lastNack.at)) lastNack = { type, ...st.lastNack };
      }
      return {
        node: n.nodeId,
        group: n.group,
        protocol: [...protocols].sort().join(', '),
        types,
        ...(lastNack ? { lastNack: `${lastNack.type} ${lastNack.at}: ${lastNack.message}` } : {}),
      };
    });
}

/** ClientStatusResponse as decoded (TO_OBJECT, keepCase). */
interface CsdsResponse {
  readonly config?: ReadonlyArray<{
    readonly node?: { readonly id?: string };
    readonly client_scope?: string;
    readonly generic_xds_configs?: ReadonlyArray<{
      readonly type_url?: string;
      readonly version_info?: string;
      readonly client_status?: string;
      readonly error_state?: { readonly details?: string; readonly last_update_attempt?: { readonly seconds?: number } };
    }>;
  }>;
}

interface CsdsTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly serverName?: string;
}

function csdsTlsOptions(values: {
  'csds-tls-ca'?: string;
  'csds-tls-cert'?: string;
  'csds-tls-key'?: string;
  'csds-tls-server-name'?: string;
}): CsdsTls | undefined {
  const { 'csds-tls-ca': ca, 'csds-tls-cert': cert, 'csds-tls-key': key, 'csds-tls-server-name': serverName } = values;
  if (ca === undefined && cert === undefined && key === undefined && serverName === undefined) return undefined;
  if ((cert === undefined) !== (key === undefined)) throw new ConsulXdsError('CXDS_USAGE', 'status: --csds-tls-cert and --csds-tls-key go together');
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(serverName !== undefined ? { serverName } : {}),
  };
}

/** TLS credentials and channel options for the CSDS client; an unreadable file is named. */
async function csdsCredentials(tls: CsdsTls): Promise<{ creds: ChannelCredentials; options: ChannelOptions }> {
  const [ca, cert, key] = await Promise.all([
    tls.ca !== undefined ? readPem(tls.ca, 'CA') : null,
    tls.cert !== undefined ? readPem(tls.cert, 'client certificate') : null,
    tls.key !== undefined ? readPem(tls.key, 'client key') : null,
  ]);
  return {
    creds: credentials.createSsl(ca, key, cert),
    options: tls.serverName !== undefined ? { 'grpc.ssl_target_name_override': tls.serverName } : {},
  };
}

async function fromCsds(address: string, only: string | undefined, tls?: { creds: ChannelCredentials; options: ChannelOptions }): Promise<ClientRow[]> {
  const requestType = messageType('envoy.service.status.v3.ClientStatusRequest');
  const responseType = messageType('envoy.service.status.v3.ClientStatusResponse');
  const request = only === undefined ? {} : { node_matchers: [{ node_id: { exact: only } }] };
  const client = new Client(address, tls?.creds ?? credentials.createInsecure(), tls?.options ?? {});
  let response: CsdsResponse;
  try {
    response = await new Promise<CsdsResponse>((resolve, reject) => {
      client.makeUnaryRequest(
        `/${CSDS_SERVICE}/FetchClientStatus`,
        (r: object) => Buffer.from(requestType.encode(requestType.fromObject(r)).finish()),
        (b: Buffer) => responseType.toObject(responseType.decode(b), TO_OBJECT) as CsdsResponse,
        request,
        { deadline: Date.now() + 5_000 },
        (err: ServiceError | null, value?: CsdsResponse) => (err ? reject(err) : resolve(value ?? {})),
      );
    });
  } catch (err) {
    throw new ConsulXdsError('CXDS_STATUS_UNREACHABLE', `status: CSDS at ${address} did not answer: ${(err as Error).message}`);
  } finally {
    client.close();
  }
  return (response.config ?? []).map((c) => {
    const types: Partial<Record<TypeShort, { sent?: string; acked?: string }>> = {};
    let lastNack: string | undefined;
    for (const g of c.generic_xds_configs ?? []) {
      if (g.type_url === undefined || !isXdsTypeUrl(g.type_url)) continue;
      const type = TYPE_SHORT[g.type_url];
      types[type] = { sent: '?', ...(g.version_info ? { acked: g.version_info } : {}) };
      if (g.client_status === 'NACKED' && lastNack === undefined) {
        const at = g.error_state?.last_update_attempt?.seconds;
        lastNack = `${type}${at !== undefined ? ` ${new Date(at * 1000).toISOString()}` : ''}: ${g.error_state?.details ?? ''}`;
      }
    }
    return { node: c.node?.id ?? '', group: c.client_scope ?? '', protocol: '?', types, ...(lastNack ? { lastNack } : {}) };
  });
}

const short = (v: string | undefined): string => (v === undefined || v === '' ? '-' : v === '?' ? '?' : v.slice(0, 8));

/** Rows as an aligned text table (header first; "(no clients connected)" when empty). */
export function formatTable(rows: readonly ClientRow[]): string {
  const header = ['NODE', 'GROUP', 'PROTOCOL', ...TYPE_ORDER.map((t) => `${TYPE_SHORT[t]} SENT/ACKED`), 'LAST NACK'];
  const lines = rows.map((r) => [
    r.node,
    r.group,
    r.protocol,
    ...TYPE_ORDER.map((t) => {
      const v = r.types[TYPE_SHORT[t]];
      return v === undefined ? '' : `${short(v.sent)}/${short(v.acked)}`;
    }),
    r.lastNack ?? '',
  ]);
  if (lines.length === 0) return `${header.join('  ')}\n(no clients connected)\n`;
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const render = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[header, ...lines].map(render).join('\n')}\n`;
}
