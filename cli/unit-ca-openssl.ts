/**
 * Stand-in for the gateway branch's certificate authority (issue 5, gateway/ca.ts): reads a unit CA
 * directory and issues a device certificate with the openssl CLI. Swap `issueDeviceCertificate`
 * for gateway/ca.ts `issueCertificate(caDir, {role: 'device', ...})` once that lands.
 *
 * CA directory (made by `recorder ca init`): ca.cert.pem, ca.key.pem, profile-signer.cert.pem,
 * profile-signer.key.pem.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EVIDENCE_KEY_URI_PREFIX } from '../gateway/ca.ts';
import { RecorderError } from '../protocol/errors.ts';
import { isValidSegment } from '../protocol/topics.ts';

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
 * The serial for the next certificate: from the CA's `serial` file when it has one (a CA made by
 * `recorder ca init`; advanced like gateway/ca.ts does, so `recorder ca revoke` knows the serial),
 * otherwise 128 random bits.
 */
function takeSerial(caDir: string): string {
  const path = join(caDir, 'serial');
  if (!existsSync(path)) return randomBytes(16).toString('hex');
  const current = BigInt(`0x${readFileSync(path, 'utf8').trim()}`);
  let next = (current + 1n).toString(16).toUpperCase();
  if (next.length % 2) next = `0${next}`;
  writeFileSync(`${path}.tmp-${process.pid}`, `${next}\n`);
  renameSync(`${path}.tmp-${process.pid}`, path);
  return current.toString(16);
}

/** Issues a TLS client certificate for `device` from the CSR, with openssl x509 -req. */
export function opensslDeviceIssuer(caDir: string): IssueDeviceCertificate {
  const files = caDirFiles(caDir);
  const caCertPem = readCaFile(files.caCert);
  readCaFile(files.caKey);
  // The gateway reads role and id from OU and CN and the unit from O (gateway/ca.ts): the subject
  // is set here, never taken from the device's CSR.
  const unit = /(?:^|\n)O=([^\n]+)/.exec(new X509Certificate(caCertPem).subject)?.[1];
  return async (csrPem, { device, evidencePublicKeyPem }) => {
    const work = mkdtempSync(join(tmpdir(), 'recorder-issue-'));
    try {
      if (!unit) throw new RecorderError('CA_INVALID', `${files.caCert} names no unit (O=)`);
      if (!isValidSegment(device))
        throw new RecorderError(
          'CA_BAD_REQUEST',
          `device number ${JSON.stringify(device)} is not 1–64 letters, digits, _ . -`,
        );
      const evidenceSpki = createPublicKey(evidencePublicKeyPem).export({ type: 'spki', format: 'der' });
      writeFileSync(join(work, 'device.csr.pem'), csrPem);
      // DESIGN.md "Identity, keys and trust": the certificate binds the device number to both keys:
      // the TLS key it certifies, and the whole Ed25519 evidence key in the URI the gateway reads
      // (gateway/ca.ts EVIDENCE_KEY_URI_PREFIX).
      writeFileSync(
        join(work, 'device.ext'),
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          'extendedKeyUsage=clientAuth',
          `subjectAltName=URI:urn:recorder:device:${device},URI:${EVIDENCE_KEY_URI_PREFIX}${evidenceSpki.toString('base64url')}`,
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
          `0x${takeSerial(caDir)}`,
          '-subj',
          `/O=${unit}/OU=device/CN=${device}`,
          '-days',
          String(DEVICE_CERT_DAYS),
          '-extfile',
          'device.ext',
          '-out',
          'device.cert.pem',
        ],
        { cwd: work },
      );
      const certPem = readFileSync(join(work, 'device.cert.pem'), 'utf8');
      // As gateway/ca.ts does: every certificate issued is kept, so it can be looked up and revoked.
      if (existsSync(join(caDir, 'issued')))
        writeFileSync(join(caDir, 'issued', `device-${device}.cert.pem`), certPem);
      return { certPem, chainPem: caCertPem };
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
