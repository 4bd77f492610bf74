/**
 * Real X.509 certificates for TLS tests, made with the openssl CLI (as an operator would, and as
 * docs/sidecar.md shows). In: a directory and the names a certificate must carry. Out: PEM files
 * on disk (a CA; leaf certificates it signs, for servers and clients, with DNS/URI/IP SANs) and
 * each leaf's serial and SHA-256 fingerprint, so a test can tell which certificate a peer showed
 * (servedFingerprint: what a new TLS connection to a port is shown).
 * Keys are P-256 (fast to make on a loaded box); certificates are valid for two days.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface IssuedCert extends CertFiles {
  /** Hex serial as node:crypto prints it (upper case). */
  readonly serial: string;
  /** SHA-256 fingerprint as node:crypto and tls.getPeerCertificate() print it. */
  readonly fingerprint256: string;
}

export interface SanOptions {
  readonly dns?: readonly string[];
  readonly uri?: readonly string[];
  readonly ip?: readonly string[];
}

export interface TestCa extends CertFiles {
  /** Signs a leaf certificate for `name` (files `<name>.crt`, `<name>.key` in the CA's directory). */
  issue(name: string, sans: SanOptions): Promise<IssuedCert>;
}

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(args: readonly string[]): Promise<void> {
  await execFileAsync('openssl', args);
}

let serialSeq = 0;

/** A self-signed CA `<name>-ca.crt/.key` in `dir`. */
export async function makeCa(dir: string, name: string): Promise<TestCa> {
  const cert = join(dir, `${name}-ca.crt`);
  const key = join(dir, `${name}-ca.key`);
  await openssl([
    'req',
    '-x509',
    ...KEY_ARGS,
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${name} test CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return {
    cert,
    key,
    async issue(leaf: string, sans: SanOptions): Promise<IssuedCert> {
      const leafCert = join(dir, `${leaf}.crt`);
      const leafKey = join(dir, `${leaf}.key`);
      const csr = join(dir, `${leaf}.csr`);
      const ext = join(dir, `${leaf}.ext`);
      // A [alt] section, not an inline list: a value may hold a comma.
      const alt = [
        ...(sans.dns ?? []).map((d, i) => `DNS.${i + 1} = ${d}`),
        ...(sans.uri ?? []).map((u, i) => `URI.${i + 1} = ${u}`),
        ...(sans.ip ?? []).map((a, i) => `IP.${i + 1} = ${a}`),
      ];
      await writeFile(
        ext,
        [
          'basicConstraints=CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          'extendedKeyUsage=serverAuth,clientAuth',
          ...(alt.length > 0 ? ['subjectAltName=@alt', '[alt]', ...alt] : []),
          '',
        ].join('\n'),
      );
      await openssl(['req', '-new', ...KEY_ARGS, '-keyout', leafKey, '-out', csr, '-subj', `/CN=${leaf}`]);
      // Distinct serials even within one second, so a rotation test can tell two certs apart.
      const serial = `0x${(Date.now() * 1000 + (serialSeq++ % 1000)).toString(16)}`;
      await openssl(['x509', '-req', '-in', csr, '-CA', cert, '-CAkey', key, '-set_serial', serial, '-days', '2', '-out', leafCert, '-extfile', ext]);
      const x509 = new X509Certificate(await readFile(leafCert));
      return { cert: leafCert, key: leafKey, serial: x509.serialNumber, fingerprint256: x509.fingerprint256 };
    },
  };
}

/** The fingerprint of the certificate a new TLS connection to 127.0.0.1:port is shown (verified against `caFile`, name localhost). */
export async function servedFingerprint(port: number, caFile: string, client?: CertFiles): Promise<string> {
  const [ca, cert, key] = await Promise.all([readFile(caFile), client ? readFile(client.cert) : undefined, client ? readFile(client.key) : undefined]);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['h2'], ...(cert && key ? { cert, key } : {}) }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.destroy();
    });
    socket.once('error', reject);
  });
}
