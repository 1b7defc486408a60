/** A unit CA with one certificate per role, written to a temp dir, and a gateway config for it. */
import type { ExecutionContext } from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { caPaths, initCa, issueCertificate, writeIssued, type CertificateRole } from '../../gateway/ca.ts';
import { parseGatewayConfig, type GatewayConfig } from '../../gateway/config.ts';
import { tempDir } from './temp.ts';

export interface TestIdentity {
  cert: string;
  key: string;
  ca: string;
  serial: string;
  certPem: string;
}

export interface TestPki {
  dir: string;
  caDir: string;
  unit: string;
  issue(role: CertificateRole, id: string, extra?: { notBefore?: Date; validDays?: number }): TestIdentity;
  config(overrides?: Record<string, unknown>): GatewayConfig;
}

/** `where`: a test (a temp dir removed at its end) or a directory the caller removes (for hooks). */
export function testPki(where: ExecutionContext | string, unit = 'HN-CS'): TestPki {
  const dir = typeof where === 'string' ? where : tempDir(where, 'recorder-pki-');
  const caDir = join(dir, 'ca');
  initCa(caDir, { unit });
  const issue: TestPki['issue'] = (role, id, extra = {}) => {
    const evidence = generateKeyPairSync('ed25519').publicKey.export({
      type: 'spki',
      format: 'pem',
    }) as string;
    const issued = issueCertificate(caDir, {
      role,
      id,
      ...(role === 'device' ? { evidencePublicKeyPem: evidence } : {}),
      ...extra,
    });
    const paths = writeIssued(join(dir, 'out'), role, id, issued);
    return {
      cert: paths.cert,
      key: paths.key!,
      ca: paths.ca,
      serial: issued.serial,
      certPem: issued.certPem,
    };
  };
  const gw = issue('gateway', 'station');
  return {
    dir,
    caDir,
    unit,
    issue,
    config: (overrides = {}) =>
      parseGatewayConfig({
        format: 'recorder-gateway/1',
        unit,
        listen: { host: '127.0.0.1', port: 0 },
        tls: { cert: gw.cert, key: gw.key, ca: caPaths(caDir).cert, crl: caPaths(caDir).crl },
        ...overrides,
      }),
  };
}
