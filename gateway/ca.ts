/**
 * The unit certificate authority (issue 5 item 1; DESIGN.md "Identity, keys and trust").
 *
 * node-forge builds the X.509 structures (it is the only well-kept JavaScript library that writes
 * certificates); keys are RSA 2048 made by node:crypto, and every signature is computed by
 * node:crypto (OpenSSL) through a small adapter, which is ~100× faster than forge's own RSA.
 *
 * Directory layout (other components depend on it; do not change it):
 *   DIR/ca.cert.pem               the unit CA certificate (the "chain" given to every client)
 *   DIR/ca.key.pem                its private key, mode 0600
 *   DIR/crl.pem                   the certificate revocation list, always present (may be empty)
 *   DIR/serial                    the next serial number, hex (as openssl's serial file)
 *   DIR/revoked.json              [{serial, time}] — the CRL's source, rewritten on revoke
 *   DIR/issued/<role>-<id>.cert.pem   every certificate issued
 *   DIR/profile-signer.cert.pem   the profile-signing certificate (role profile-signer), made by init
 *   DIR/profile-signer.key.pem    its private key, mode 0600
 *
 * Subject of every certificate: O = unit, OU = role, CN = id. The gateway reads role and id from
 * OU and CN of the verified client certificate, never from anything the client says.
 *
 * Evidence key binding: a device certificate carries the device's Ed25519 evidence-signing public
 * key as a subjectAltName URI `urn:x-recorder:evidence-key:ed25519:<base64url of the DER SPKI>`
 * (the whole 44-byte key, not just a fingerprint, so a verifier needs nothing else);
 * `evidenceKeyFromCertificate` reads it back with node:crypto.
 */
import {
  X509Certificate,
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateEncrypt,
  type KeyObject,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
import { RecorderError } from '../protocol/errors.ts';
import { GATEWAY_SEGMENT, isValidSegment } from '../protocol/topics.ts';

export type CertificateRole = 'device' | 'manager' | 'technician' | 'gateway' | 'profile-signer';
export const CERTIFICATE_ROLES: readonly CertificateRole[] = [
  'device',
  'manager',
  'technician',
  'gateway',
  'profile-signer',
];

export const EVIDENCE_KEY_URI_PREFIX = 'urn:x-recorder:evidence-key:ed25519:';

export const caPaths = (dir: string) => ({
  cert: join(dir, 'ca.cert.pem'),
  key: join(dir, 'ca.key.pem'),
  crl: join(dir, 'crl.pem'),
  serial: join(dir, 'serial'),
  revoked: join(dir, 'revoked.json'),
  issued: join(dir, 'issued'),
  profileSignerCert: join(dir, 'profile-signer.cert.pem'),
  profileSignerKey: join(dir, 'profile-signer.key.pem'),
});

export interface CaInitOptions {
  unit: string;
  /** default: now */
  now?: Date;
  /** CA validity; default 3650 days */
  validDays?: number;
}

export interface IssueOptions {
  role: CertificateRole;
  id: string;
  /** an RSA public key to certify (PEM); with neither this nor csrPem a new key pair is made */
  publicKeyPem?: string;
  /** a PKCS#10 request: its signature is checked and its public key certified; its subject is ignored */
  csrPem?: string;
  /** role device: the device's Ed25519 evidence-signing public key (SPKI PEM), required */
  evidencePublicKeyPem?: string;
  /** gateway: names the server certificate is valid for; default localhost + 127.0.0.1 + ::1 */
  dnsNames?: string[];
  ipAddresses?: string[];
  /** default: now minus one minute (clock skew) */
  notBefore?: Date;
  /** default 825 days (the CA/Browser limit many TLS stacks still apply) */
  validDays?: number;
}

export interface IssuedCertificate {
  certPem: string;
  /** the new private key (PKCS#8 PEM) when the CA made the key pair */
  keyPem?: string;
  /** the CA certificate(s) a peer needs to verify certPem */
  chainPem: string;
  /** hex, as `openssl x509 -serial` prints it */
  serial: string;
}

const DAY = 86_400_000;
// DER DigestInfo prefix for SHA-256, RFC 8017 §9.2 note 1: PKCS#1 v1.5 signing of a given digest.
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** A forge "private key" whose sign() runs in OpenSSL: forge hashes, node:crypto signs. */
function nodeSigner(key: KeyObject): forge.pki.rsa.PrivateKey {
  return {
    sign: (md: forge.md.MessageDigest) =>
      privateEncrypt(
        { key, padding: constants.RSA_PKCS1_PADDING },
        Buffer.concat([SHA256_DIGEST_INFO, Buffer.from(md.digest().getBytes(), 'binary')]),
      ).toString('binary'),
  } as unknown as forge.pki.rsa.PrivateKey;
}

function rsaKeyPair(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Serial numbers are positive: the first hex digit stays below 8 (X.690 two's complement). */
function nextSerial(dir: string): string {
  const path = caPaths(dir).serial;
  const current = BigInt(`0x${readFileSync(path, 'utf8').trim()}`);
  let next = (current + 1n).toString(16);
  if (next.length % 2) next = `0${next}`;
  writeFileAtomic(path, `${next.toUpperCase()}\n`, 0o644);
  let hex = current.toString(16).toUpperCase();
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex[0]!, 16) >= 8) hex = `00${hex}`;
  return hex;
}

function subjectAttrs(unit: string, role: string, id: string): forge.pki.CertificateField[] {
  return [
    { shortName: 'O', value: unit },
    { shortName: 'OU', value: role },
    { shortName: 'CN', value: id },
  ];
}

/** Creates a CA in `dir` (refuses an existing one), an empty CRL and the profile-signing certificate. */
export function initCa(dir: string, options: CaInitOptions): { certPem: string } {
  if (!isValidSegment(options.unit)) {
    throw new RecorderError(
      'CLI_USAGE',
      `unit ${JSON.stringify(options.unit)} must be letters, digits, _ . -`,
    );
  }
  const paths = caPaths(dir);
  if (existsSync(paths.cert) || existsSync(paths.key)) {
    throw new RecorderError(
      'CA_EXISTS',
      `${dir} already holds a certificate authority; refusing to replace it`,
      {
        dir,
      },
    );
  }
  mkdirSync(paths.issued, { recursive: true, mode: 0o700 });
  const now = options.now ?? new Date();
  const keys = rsaKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + (options.validDays ?? 3650) * DAY);
  const attrs = subjectAttrs(options.unit, 'ca', `${options.unit} recorder CA`);
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true, pathLenConstraint: 0 },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(nodeSigner(createPrivateKey(keys.privateKeyPem)), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
  writeFileAtomic(paths.key, keys.privateKeyPem, 0o600);
  writeFileAtomic(paths.cert, certPem, 0o644);
  writeFileAtomic(paths.serial, '1000\n', 0o644);
  writeFileAtomic(paths.revoked, '[]\n', 0o644);
  writeCrl(dir, now);
  const signer = issueCertificate(dir, {
    role: 'profile-signer',
    id: `${options.unit}-profiles`,
    validDays: 3650,
  });
  writeFileAtomic(paths.profileSignerKey, signer.keyPem!, 0o600);
  writeFileAtomic(paths.profileSignerCert, signer.certPem, 0o644);
  return { certPem };
}

interface LoadedCa {
  cert: forge.pki.Certificate;
  certPem: string;
  key: KeyObject;
  unit: string;
}

export function loadCa(dir: string): LoadedCa {
  const paths = caPaths(dir);
  if (!existsSync(paths.cert) || !existsSync(paths.key)) {
    throw new RecorderError(
      'CA_MISSING',
      `${dir} holds no ca.cert.pem and ca.key.pem; run recorder ca init first`,
      {
        dir,
      },
    );
  }
  const certPem = readFileSync(paths.cert, 'utf8');
  const cert = forge.pki.certificateFromPem(certPem);
  const unit = String(cert.subject.getField('O')?.value ?? '');
  return { cert, certPem, key: createPrivateKey(readFileSync(paths.key)), unit };
}

/** Issues a certificate for `role`/`id`, records it under issued/, and returns it with the chain. */
export function issueCertificate(caDir: string, options: IssueOptions): IssuedCertificate {
  const { role, id } = options;
  if (!CERTIFICATE_ROLES.includes(role)) {
    throw new RecorderError(
      'CA_BAD_REQUEST',
      `role must be one of ${CERTIFICATE_ROLES.join(', ')}, got ${role}`,
    );
  }
  if (!isValidSegment(id) || (role === 'device' && id === GATEWAY_SEGMENT)) {
    // The id becomes an MQTT topic level for devices: no wildcards, separators or `$` (DESIGN.md "MQTT").
    throw new RecorderError(
      'CA_BAD_REQUEST',
      `id ${JSON.stringify(id)} must be 1–64 letters, digits, _ . - `,
    );
  }
  if (role === 'device' && !options.evidencePublicKeyPem) {
    throw new RecorderError(
      'CA_BAD_REQUEST',
      "a device certificate binds the device's Ed25519 evidence key: give its public key (--evidence-key FILE)",
    );
  }
  const ca = loadCa(caDir);
  let keyPem: string | undefined;
  let publicKey: forge.pki.PublicKey;
  if (options.csrPem) {
    let csr: ReturnType<typeof forge.pki.certificationRequestFromPem>;
    try {
      csr = forge.pki.certificationRequestFromPem(options.csrPem);
    } catch (error) {
      throw new RecorderError('CA_BAD_REQUEST', `the CSR cannot be read: ${(error as Error).message}`);
    }
    let verified = false;
    try {
      verified = csr.verify();
    } catch {
      // forge throws on a signature block that does not even decode
    }
    if (!verified) throw new RecorderError('CA_BAD_REQUEST', 'the CSR signature does not verify');
    publicKey = csr.publicKey!;
  } else if (options.publicKeyPem) {
    try {
      publicKey = forge.pki.publicKeyFromPem(options.publicKeyPem);
    } catch (error) {
      throw new RecorderError(
        'CA_BAD_REQUEST',
        `the public key is not an RSA key: ${(error as Error).message}`,
      );
    }
  } else {
    const keys = rsaKeyPair();
    keyPem = keys.privateKeyPem;
    publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  }
  const altNames: { type: number; value?: string; ip?: string }[] = [];
  if (role === 'device') {
    let spki: Buffer;
    try {
      const key = createPublicKey(options.evidencePublicKeyPem!);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${key.asymmetricKeyType} is not ed25519`);
      spki = key.export({ type: 'spki', format: 'der' });
    } catch (error) {
      throw new RecorderError(
        'CA_BAD_REQUEST',
        `the evidence key is not an Ed25519 key: ${(error as Error).message}`,
      );
    }
    altNames.push({ type: 6, value: `${EVIDENCE_KEY_URI_PREFIX}${spki.toString('base64url')}` });
  }
  if (role === 'gateway') {
    for (const dns of options.dnsNames ?? ['localhost']) altNames.push({ type: 2, value: dns });
    for (const ip of options.ipAddresses ?? ['127.0.0.1', '::1']) altNames.push({ type: 7, ip });
  }
  const now = new Date();
  const notBefore = options.notBefore ?? new Date(now.getTime() - 60_000);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = nextSerial(caDir);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = new Date(notBefore.getTime() + (options.validDays ?? 825) * DAY);
  cert.setSubject(subjectAttrs(ca.unit, role, id));
  cert.setIssuer(ca.cert.subject.attributes);
  const extensions: object[] = [
    { name: 'basicConstraints', cA: false, critical: true },
    role === 'profile-signer'
      ? { name: 'keyUsage', digitalSignature: true, critical: true }
      : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    role === 'gateway'
      ? { name: 'extKeyUsage', serverAuth: true, clientAuth: true }
      : role === 'profile-signer'
        ? { name: 'extKeyUsage', codeSigning: true }
        : { name: 'extKeyUsage', clientAuth: true },
    { name: 'subjectKeyIdentifier' },
  ];
  if (altNames.length > 0) extensions.push({ name: 'subjectAltName', altNames });
  cert.setExtensions(extensions);
  cert.sign(nodeSigner(ca.key), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
  const paths = caPaths(caDir);
  mkdirSync(paths.issued, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(paths.issued, `${role}-${id}.cert.pem`), certPem, 0o644);
  return {
    certPem,
    ...(keyPem ? { keyPem } : {}),
    chainPem: ca.certPem,
    serial: cert.serialNumber.toUpperCase(),
  };
}

/** Writes `<role>-<id>.key.pem` (0600), `<role>-<id>.cert.pem` and `ca.cert.pem` into `outDir`. */
export function writeIssued(
  outDir: string,
  role: string,
  id: string,
  issued: IssuedCertificate,
): { cert: string; key?: string; ca: string } {
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  const cert = join(outDir, `${role}-${id}.cert.pem`);
  const key = join(outDir, `${role}-${id}.key.pem`);
  const ca = join(outDir, 'ca.cert.pem');
  if (issued.keyPem) writeFileAtomic(key, issued.keyPem, 0o600);
  writeFileAtomic(cert, issued.certPem, 0o644);
  writeFileAtomic(ca, issued.chainPem, 0o644);
  return { cert, ...(issued.keyPem ? { key } : {}), ca };
}

interface RevokedEntry {
  serial: string;
  time: string;
}

function normaliseSerial(serial: string): string {
  const hex = serial.trim().replace(/^0x/i, '').replace(/:/g, '').toUpperCase();
  if (!/^[0-9A-F]{1,40}$/.test(hex))
    throw new RecorderError('CLI_USAGE', `serial ${serial} is not a hex number`);
  return BigInt(`0x${hex}`).toString(16).toUpperCase();
}

/** Adds `serial` (hex, as `openssl x509 -serial` prints it) to the CRL and rewrites crl.pem. */
export function revokeCertificate(caDir: string, serial: string, now = new Date()): string {
  const paths = caPaths(caDir);
  loadCa(caDir);
  const wanted = normaliseSerial(serial);
  const next = BigInt(`0x${readFileSync(paths.serial, 'utf8').trim()}`);
  if (BigInt(`0x${wanted}`) >= next || BigInt(`0x${wanted}`) < 0x1000n) {
    throw new RecorderError('CA_UNKNOWN_SERIAL', `this CA never issued serial ${wanted}`, { serial: wanted });
  }
  const revoked = JSON.parse(readFileSync(paths.revoked, 'utf8')) as RevokedEntry[];
  if (!revoked.some((r) => r.serial === wanted)) revoked.push({ serial: wanted, time: now.toISOString() });
  writeFileAtomic(paths.revoked, `${JSON.stringify(revoked, null, 2)}\n`, 0o644);
  return writeCrl(caDir, now);
}

/**
 * Writes DIR/crl.pem: an X.509 v1 CRL (RFC 5280 §5.1) built with forge's ASN.1 writer and signed by
 * node:crypto. nextUpdate is a year ahead: a gateway refuses every client once its CRL expires
 * (OpenSSL X509_V_ERR_CRL_HAS_EXPIRED), so re-run `recorder ca revoke` or `ca crl` within the year.
 */
export function writeCrl(caDir: string, now = new Date()): string {
  const ca = loadCa(caDir);
  const paths = caPaths(caDir);
  const revoked = JSON.parse(readFileSync(paths.revoked, 'utf8')) as RevokedEntry[];
  const { asn1 } = forge;
  const seq = (items: forge.asn1.Asn1[]) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
  const time = (d: Date) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d));
  const integer = (hex: string) => {
    let h = hex.length % 2 ? `0${hex}` : hex;
    if (parseInt(h[0]!, 16) >= 8) h = `00${h}`;
    return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, forge.util.hexToBytes(h));
  };
  const algorithm = seq([
    asn1.create(
      asn1.Class.UNIVERSAL,
      asn1.Type.OID,
      false,
      asn1.oidToDer(forge.pki.oids.sha256WithRSAEncryption!).getBytes(),
    ),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
  ]);
  const tbsItems = [
    algorithm,
    forge.pki.distinguishedNameToAsn1(ca.cert.subject),
    time(now),
    time(new Date(now.getTime() + 365 * DAY)),
  ];
  if (revoked.length > 0) {
    tbsItems.push(seq(revoked.map((r) => seq([integer(r.serial), time(new Date(r.time))]))));
  }
  const tbs = seq(tbsItems);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const md = forge.md.sha256.create();
  md.update(tbsDer.toString('binary'));
  const signature = nodeSigner(ca.key).sign(md);
  const crl = seq([
    tbs,
    algorithm,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\u0000${signature}`),
  ]);
  const der = Buffer.from(asn1.toDer(crl).getBytes(), 'binary');
  const pem = `-----BEGIN X509 CRL-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n?$/, '\n')}-----END X509 CRL-----\n`;
  writeFileAtomic(paths.crl, pem, 0o644);
  return pem;
}

/**
 * Each CRL in `pem` (a CA's crl.pem, or several concatenated: a center trusts several unit CAs):
 * the DER of its issuer's name (binary string), and the serials it revokes (upper-case hex, no
 * leading zeros). Used by the gateway to close connections of certificates revoked while connected;
 * the CRLs' signatures are checked by OpenSSL when they are loaded into the TLS context, not here.
 */
export function crlRevocations(
  pem: string,
): { issuer: string; serials: Set<string>; nextUpdate: Date | null }[] {
  const { asn1 } = forge;
  const blocks = pem.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g) ?? [];
  return blocks.map((block) => {
    const der = Buffer.from(block.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const list = asn1.fromDer(der.toString('binary'));
    const tbs = (list.value as forge.asn1.Asn1[])[0]!.value as forge.asn1.Asn1[];
    // RFC 5280 §5.1: [version], signature, issuer, thisUpdate, [nextUpdate], [revokedCertificates], …
    const issuerAt = tbs[0]!.type === asn1.Type.INTEGER ? 2 : 1;
    const issuer = tbs[issuerAt]!;
    // nextUpdate, when present, is the Time right after thisUpdate.
    const next = tbs[issuerAt + 2];
    const nextUpdate =
      next?.type === asn1.Type.UTCTIME
        ? asn1.utcTimeToDate(next.value as string)
        : next?.type === asn1.Type.GENERALIZEDTIME
          ? asn1.generalizedTimeToDate(next.value as string)
          : null;
    const serials = new Set<string>();
    // revokedCertificates is the first SEQUENCE after thisUpdate/nextUpdate.
    const revoked = tbs.find(
      (item, i) => i >= 3 && item.type === asn1.Type.SEQUENCE && item.tagClass === asn1.Class.UNIVERSAL,
    );
    for (const entry of (revoked?.value as forge.asn1.Asn1[] | undefined) ?? []) {
      const serial = (entry.value as forge.asn1.Asn1[])[0]!.value as string;
      serials.add(
        BigInt(`0x${forge.util.bytesToHex(serial) || '0'}`)
          .toString(16)
          .toUpperCase(),
      );
    }
    return { issuer: asn1.toDer(issuer).getBytes(), serials, nextUpdate };
  });
}

/** The serials revoked by the CRLs in `crlPem` (upper-case hex). */
export function revokedSerials(crlPem: string): Set<string> {
  return new Set(crlRevocations(crlPem).flatMap((crl) => [...crl.serials]));
}

/** The DER of a certificate's issuer name (binary string), as crlRevocations gives it for a CRL. */
export function issuerNameDer(certDer: Buffer): string {
  const { asn1 } = forge;
  const tbs = (asn1.fromDer(certDer.toString('binary')).value as forge.asn1.Asn1[])[0]!
    .value as forge.asn1.Asn1[];
  // [0] version (context-specific), serialNumber, signature, issuer, …
  const issuer = tbs[tbs[0]!.tagClass === asn1.Class.CONTEXT_SPECIFIC ? 3 : 2]!;
  return asn1.toDer(issuer).getBytes();
}

/** The Ed25519 evidence-signing public key (SPKI PEM) bound into a device certificate, if any. */
export function evidenceKeyFromCertificate(certPem: string): string | undefined {
  const cert = new X509Certificate(certPem);
  for (const name of (cert.subjectAltName ?? '').split(', ')) {
    const uri = name.startsWith('URI:') ? name.slice(4) : undefined;
    if (!uri?.startsWith(EVIDENCE_KEY_URI_PREFIX)) continue;
    const der = Buffer.from(uri.slice(EVIDENCE_KEY_URI_PREFIX.length), 'base64url');
    const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== 'ed25519') return undefined;
    return key.export({ type: 'spki', format: 'pem' }) as string;
  }
  return undefined;
}

/** Role, id and unit from a certificate's subject (OU, CN, O). */
export function identityFromSubject(subject: {
  O?: string | string[];
  OU?: string | string[];
  CN?: string | string[];
}): { role: string; id: string; unit: string } | undefined {
  const one = (v: string | string[] | undefined) => (typeof v === 'string' ? v : undefined);
  const role = one(subject.OU);
  const id = one(subject.CN);
  const unit = one(subject.O);
  return role && id && unit ? { role, id, unit } : undefined;
}
