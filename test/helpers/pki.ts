/** A unit CA with one certificate per role, written to a temp dir, and a gateway config for it. */
import type { ExecutionContext } from 'ava';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import forge from 'node-forge';
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

/**
 * `identity`'s certificate with another unit (O) in its subject, signed again by `pki`'s CA: what a
 * unit CA that a center trusts for its own unit could forge for another. Written beside it.
 */
export function namingUnit(pki: TestPki, identity: TestIdentity, unit: string): TestIdentity {
  const cert = forge.pki.certificateFromPem(identity.certPem);
  cert.setSubject(
    cert.subject.attributes.map((a) => ({
      shortName: a.shortName!,
      value: a.shortName === 'O' ? unit : a.value,
    })),
  );
  const caKey = createPrivateKey(readFileSync(caPaths(pki.caDir).key)).export({
    type: 'pkcs1',
    format: 'pem',
  });
  cert.sign(forge.pki.privateKeyFromPem(caKey as string), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
  const path = identity.cert.replace(/\.cert\.pem$/, `.as-${unit}.cert.pem`);
  writeFileSync(path, certPem);
  return { ...identity, cert: path, certPem };
}
