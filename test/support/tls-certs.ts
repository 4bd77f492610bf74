/**
 * Real certificates for TLS tests, made with the openssl CLI. In: a directory and the names a
 * certificate should carry. Out: PEM files (a CA, and leaf certificates it signed, each with its
 * key) and their paths. EC P-256 keys: fast to make, accepted by Envoy and node alike.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface TestCa extends CertFiles {
  /** A leaf signed by this CA; `sans` like ['DNS:localhost', 'IP:127.0.0.1', 'URI:spiffe://x']. */
  issue(name: string, sans: readonly string[]): CertFiles;
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function newKey(file: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
}

/** A self-signed CA named `name` in `dir` (files <name>.crt, <name>.key). */
export function makeCa(dir: string, name: string): TestCa {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  newKey(key);
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return {
    cert,
    key,
    issue(leaf, sans) {
      const leafKey = join(dir, `${leaf}.key`);
      const csr = join(dir, `${leaf}.csr`);
      const leafCert = join(dir, `${leaf}.crt`);
      const ext = join(dir, `${leaf}.ext`);
      newKey(leafKey);
      openssl(['req', '-new', '-key', leafKey, '-out', csr, '-subj', `/CN=${leaf}`]);
      writeFileSync(ext, `subjectAltName=${sans.join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
      openssl(['x509', '-req', '-in', csr, '-CA', cert, '-CAkey', key, '-CAcreateserial', '-out', leafCert, '-days', '2', '-extfile', ext]);
      return { cert: leafCert, key: leafKey };
    },
  };
}
