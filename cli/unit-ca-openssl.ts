/**
 * Stand-in for the gateway branch's certificate authority (issue 5, gateway/ca.ts): reads a unit CA
 * directory and issues a device certificate with the openssl CLI. Swap `issueDeviceCertificate`
 * for gateway/ca.ts `issueCertificate(caDir, {role: 'device', ...})` once that lands.
 *
 * CA directory (made by `recorder ca init`): ca.cert.pem, ca.key.pem, profile-signer.cert.pem,
 * profile-signer.key.pem.
 */
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RecorderError } from '../protocol/errors.ts';

export interface CaDirFiles {
  caCert: string;
  caKey: string;
  signerCert: string;
  signerKey: string;
}

export function caDirFiles(dir: string): CaDirFiles {
  return {
    caCert: join(dir, 'ca.cert.pem'),
    caKey: join(dir, 'ca.key.pem'),
    signerCert: join(dir, 'profile-signer.cert.pem'),
    signerKey: join(dir, 'profile-signer.key.pem'),
  };
}

export function readCaFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new RecorderError('CA_INVALID', `${path} is missing; make the unit CA with 'recorder ca init'`, {
      path,
    });
  }
}

/** What the flash tool needs from a CA: an injected function, so the gateway's CA can replace it. */
export type IssueDeviceCertificate = (
  csrPem: string,
  subject: { device: string; evidencePublicKeyPem: string },
) => Promise<{ certPem: string; chainPem: string }>;

/** Days a device certificate is valid: about two years, renewed by re-flashing. */
export const DEVICE_CERT_DAYS = 825;

/** Issues a TLS client certificate for `device` from the CSR, with openssl x509 -req. */
export function opensslDeviceIssuer(caDir: string): IssueDeviceCertificate {
  const files = caDirFiles(caDir);
  const caCertPem = readCaFile(files.caCert);
  readCaFile(files.caKey);
  return async (csrPem, { device, evidencePublicKeyPem }) => {
    const work = mkdtempSync(join(tmpdir(), 'recorder-issue-'));
    try {
      const evidenceFingerprint = createHash('sha256')
        .update(createPublicKey(evidencePublicKeyPem).export({ type: 'spki', format: 'der' }))
        .digest('hex');
      writeFileSync(join(work, 'device.csr.pem'), csrPem);
      // DESIGN.md "Identity, keys and trust": the certificate binds the device number to both keys:
      // the TLS key it certifies, and the Ed25519 evidence key by its SHA-256 fingerprint.
      writeFileSync(
        join(work, 'device.ext'),
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          'extendedKeyUsage=clientAuth',
          `subjectAltName=URI:urn:recorder:device:${device},URI:urn:recorder:evidence-key:sha256:${evidenceFingerprint}`,
          '',
        ].join('\n'),
      );
      await promisify(execFile)(
        'openssl',
        [
          'x509',
          '-req',
          '-in',
          'device.csr.pem',
          '-CA',
          files.caCert,
          '-CAkey',
          files.caKey,
          '-set_serial',
          `0x${randomBytes(16).toString('hex')}`,
          '-days',
          String(DEVICE_CERT_DAYS),
          '-extfile',
          'device.ext',
          '-out',
          'device.cert.pem',
        ],
        { cwd: work },
      );
      return { certPem: readFileSync(join(work, 'device.cert.pem'), 'utf8'), chainPem: caCertPem };
    } catch (error) {
      if (error instanceof RecorderError) throw error;
      throw new RecorderError(
        'CA_INVALID',
        `openssl could not issue the device certificate: ${(error as Error).message}`,
      );
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  };
}
