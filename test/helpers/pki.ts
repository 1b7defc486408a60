/** A unit CA with one certificate per role, written to a temp dir, and a gateway config for it. */
import type { ExecutionContext } from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
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
  issue(
    role: CertificateRole,
    id: string,
    extra?: { notBefore?: Date; validDays?: number; evidencePublicKeyPem?: string },
  ): TestIdentity;
  config(overrides?: Record<string, unknown>): GatewayConfig;
  /** the gateway's receipt-signing key pair (issue 6): PEM files in `dir` */
  receiptKey: { key: string; pub: string };
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
  const receipt = generateKeyPairSync('ed25519');
  const receiptKey = { key: join(dir, 'receipt.key.pem'), pub: join(dir, 'receipt.pub.pem') };
  writeFileSync(receiptKey.key, receipt.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(receiptKey.pub, receipt.publicKey.export({ type: 'spki', format: 'pem' }));
  return {
    dir,
    caDir,
    unit,
    issue,
    receiptKey,
    config: (overrides = {}) =>
      parseGatewayConfig({
        format: 'recorder-gateway/1',
        unit,
        listen: { host: '127.0.0.1', port: 0 },
        tls: { cert: gw.cert, key: gw.key, ca: caPaths(caDir).cert, crl: caPaths(caDir).crl },
        // Absolute: parseGatewayConfig alone does not resolve paths against a config file.
        evidence: { dir: join(dir, 'evidence'), receiptKey: receiptKey.key },
        ...overrides,
      }),
  };
}
