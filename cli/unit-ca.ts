/**
 * The unit CA as the technician's tools use it: the files of a CA directory (made by
 * `recorder ca init`: ca.cert.pem, ca.key.pem, profile-signer.cert.pem, profile-signer.key.pem)
 * and a device-certificate issuer for `recorder flash`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCertificate } from '../gateway/ca.ts';
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

/**
 * Issues the device's TLS client certificate from its CSR with the unit CA (gateway/ca.ts): CN is
 * the device number, and the certificate binds the device's Ed25519 evidence key (DESIGN.md
 * "Identity, keys and trust"). The chain ends with the self-signed unit CA the device pins.
 */
export function unitCaDeviceIssuer(caDir: string): IssueDeviceCertificate {
  readCaFile(caDirFiles(caDir).caCert);
  readCaFile(caDirFiles(caDir).caKey);
  return async (csrPem, { device, evidencePublicKeyPem }) => {
    const issued = issueCertificate(caDir, {
      role: 'device',
      id: device,
      csrPem,
      evidencePublicKeyPem,
      validDays: DEVICE_CERT_DAYS,
    });
    return { certPem: issued.certPem, chainPem: issued.chainPem };
  };
}
