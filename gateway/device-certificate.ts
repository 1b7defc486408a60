/**
 * The center's check of a device certificate relayed by a station (issue 6 item 4): the center
 * has no TLS session with the device, so the certificate must chain to a unit CA the center
 * trusts (its own unit's `tls.ca`, and the `units` it admits), name the device as a `device`, and
 * name (O) the unit of the CA that issued it; its evidence key is then the one the journal entries
 * must be signed with.
 *
 * Validity dates are not checked: evidence is relayed, and may be re-relayed, long after it was
 * signed, and the entry's signature time is inside the journal chain, not the certificate. The
 * unit CA's revocation list is the station's business at upload time (gateway/broker.ts).
 */
import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { RecorderError } from '../protocol/errors.ts';
import { evidenceKeyFromCertificate } from './ca.ts';
import type { GatewayConfig } from './config.ts';

/** Every certificate in a PEM bundle. */
export function certificatesFromPem(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

function subjectField(subject: string, name: string): string | undefined {
  for (const line of subject.split('\n')) if (line.startsWith(`${name}=`)) return line.slice(name.length + 1);
  return undefined;
}

/**
 * Checks `certPem` for `device` against the trusted CAs; returns the evidence key and the unit the
 * issuing CA named. Throws DEVICE_CERT_INVALID with the reason.
 */
export function checkDeviceCertificate(
  certPem: string,
  device: string,
  trusted: readonly X509Certificate[],
): { key: KeyObject; unit: string | null } {
  const fail = (why: string) =>
    new RecorderError('DEVICE_CERT_INVALID', `the certificate sent for ${device} ${why}`, { device });
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (error) {
    throw fail(`cannot be read: ${(error as Error).message}`);
  }
  const issuer = trusted.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
  if (!issuer) throw fail('does not chain to a unit CA this center trusts');
  if (subjectField(cert.subject, 'CN') !== device || subjectField(cert.subject, 'OU') !== 'device')
    throw fail(`names ${subjectField(cert.subject, 'OU')}/${subjectField(cert.subject, 'CN')}`);
  // Each unit CA speaks for its own unit only (a center trusts several).
  const unit = subjectField(cert.subject, 'O');
  const issuerUnit = subjectField(issuer.subject, 'O');
  if (unit !== issuerUnit)
    throw fail(`names unit ${unit ?? 'none'} but was issued by the CA of unit ${issuerUnit ?? 'none'}`);
  const pem = evidenceKeyFromCertificate(certPem);
  if (!pem) throw fail('binds no Ed25519 evidence key');
  return { key: createPublicKey(pem), unit: unit ?? null };
}

/**
 * The CA certificates of every unit a gateway admits, its own first. Each must name (O) the unit
 * it is admitted for: the broker, the center's check of relayed device certificates and
 * `recorder evidence verify` take a certificate's unit to be its issuer's. Throws
 * GATEWAY_CONFIG_INVALID for a file that cannot be read or a CA of another unit.
 */
export function admittedCas(config: GatewayConfig): X509Certificate[] {
  const admitted = [{ unit: config.unit, ca: config.tls.ca }, ...(config.units ?? [])];
  return admitted.flatMap(({ unit, ca }) => {
    let certs: X509Certificate[];
    try {
      certs = certificatesFromPem(readFileSync(ca, 'utf8'));
    } catch (error) {
      throw new RecorderError(
        'GATEWAY_CONFIG_INVALID',
        `cannot read the CA certificate ${ca}: ${(error as Error).message}`,
      );
    }
    if (certs.length === 0)
      throw new RecorderError('GATEWAY_CONFIG_INVALID', `${ca} holds no CA certificate`);
    for (const cert of certs) {
      const named = subjectField(cert.subject, 'O');
      if (named !== unit) {
        throw new RecorderError(
          'GATEWAY_CONFIG_INVALID',
          `${ca}: a CA certificate of unit ${named ?? 'none'} (${cert.subject.replace(/\n/g, ', ')}) is admitted for unit ${unit}`,
        );
      }
    }
    return certs;
  });
}
