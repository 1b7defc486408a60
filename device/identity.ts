/**
 * The device's TLS identity (DESIGN.md "Identity, keys and trust"): an RSA key made on the device
 * (node:crypto), a CSR naming the device number (node-forge creates it; OpenSSL checks
 * everything), and the certificate + CA chain the unit CA returns, checked before it is kept.
 */
import { X509Certificate, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { RecorderError } from '../protocol/errors.ts';

export interface TlsKeyAndCsr {
  keyPem: string;
  csrPem: string;
}

/**
 * Makes an RSA-2048 key and a CSR with CN = device number, signed with SHA-256. The key is made
 * off the event loop: on a slow board it takes seconds, and the service port must keep
 * acknowledging frames meanwhile.
 */
export async function createTlsKeyAndCsr(device: string): Promise<TlsKeyAndCsr> {
  const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return { keyPem, csrPem: csrFor(device, keyPem) };
}

export function csrFor(device: string, keyPem: string): string {
  const key = forge.pki.privateKeyFromPem(keyPem);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject([
    { name: 'commonName', value: device },
    { name: 'organizationalUnitName', value: 'recorder-device' },
  ]);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

/** Reads the CN of a CSR after checking its self-signature; throws IDENTITY_INVALID. */
export function csrCommonName(csrPem: string): string {
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (error) {
    throw new RecorderError('IDENTITY_INVALID', `the CSR cannot be read: ${(error as Error).message}`);
  }
  if (!csr.verify()) throw new RecorderError('IDENTITY_INVALID', 'the CSR signature does not verify');
  const cn = csr.subject.getField('CN') as { value: string } | null;
  if (!cn) throw new RecorderError('IDENTITY_INVALID', 'the CSR has no common name');
  return cn.value;
}

export function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export interface CheckedIdentity {
  cert: X509Certificate;
  /** The self-signed unit CA at the end of the chain: the device pins it. */
  ca: X509Certificate;
}

/**
 * Checks a certificate for this device: issued (through the chain) by a self-signed CA at the
 * chain's end, valid now, a leaf for TLS clients, for the key in our CSR, naming this device.
 */
export function checkDeviceCertificate(options: {
  certPem: string;
  chainPem: string;
  tlsPublicKey: KeyObject;
  device: string;
  now?: Date;
}): CheckedIdentity {
  const fail = (message: string) =>
    new RecorderError('IDENTITY_INVALID', message, { device: options.device });
  let cert: X509Certificate;
  let chain: X509Certificate[];
  try {
    cert = new X509Certificate(options.certPem);
    chain = splitPem(options.chainPem).map((pem) => new X509Certificate(pem));
  } catch (error) {
    throw fail(`the certificate or chain cannot be read: ${(error as Error).message}`);
  }
  const ca = chain.at(-1);
  if (!ca) throw fail('the CA chain is empty');
  if (!ca.ca || !ca.checkIssued(ca) || !ca.verify(ca.publicKey)) {
    throw fail('the last certificate of the chain is not a self-signed CA');
  }
  const now = options.now ?? new Date();
  let current = cert;
  for (const issuer of chain) {
    if (!current.checkIssued(issuer) || !current.verify(issuer.publicKey) || !issuer.ca) {
      throw fail(
        `${current.subject.replace(/\n/g, ', ')} is not issued by ${issuer.subject.replace(/\n/g, ', ')}`,
      );
    }
    current = issuer;
  }
  for (const c of [cert, ...chain]) {
    if (now < new Date(c.validFrom) || now > new Date(c.validTo)) {
      throw fail(`${c.subject.replace(/\n/g, ', ')} is not valid now (${c.validFrom} – ${c.validTo})`);
    }
  }
  if (cert.ca) throw fail('the device certificate is a CA certificate');
  const ours = options.tlsPublicKey.export({ type: 'spki', format: 'der' });
  if (!cert.publicKey.export({ type: 'spki', format: 'der' }).equals(ours)) {
    throw fail("the certificate is for another key, not this device's CSR");
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  const sanDevice = /URI:urn:recorder:device:([^,\s]+)/.exec(cert.subjectAltName ?? '')?.[1];
  if (cn !== options.device || (sanDevice !== undefined && sanDevice !== options.device)) {
    throw fail(`the certificate names ${cn ?? '(no CN)'}, this device is ${options.device}`);
  }
  return { cert, ca };
}
