/**
 * Signed device profiles (issue 7, DESIGN.md "Identity, keys and trust"): a profile is signed by
 * the unit's profile-signing certificate, itself issued by the unit CA. A device accepts a profile
 * only if the signature chains to its pinned unit CA, the profile names this device and its
 * version is higher than the one in force. Pure: node:crypto only (OpenSSL verifies).
 *
 * Document (JSON):
 *   { "profile": {...},
 *     "signature": { "alg": "RS256" | "EdDSA", "certificate": PEM, "chain"?: [PEM...],
 *                    "value": base64 signature over the RFC 8785 canonical JSON of `profile` } }
 */
import { X509Certificate, createPrivateKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalize } from './canonical-json.ts';
import { RecorderError, type ErrorCode } from './errors.ts';
import { parseProfile, type Profile } from './schemas/profile.ts';

/** A signed profile larger than this is refused before it is parsed (a profile is a few KiB). */
export const MAX_SIGNED_PROFILE_BYTES = 64 * 1024;
/** id-kp-codeSigning (RFC 5280 §4.2.1.12): the extended key usage a profile signer must carry. */
export const PROFILE_SIGNER_EKU = '1.3.6.1.5.5.7.3.3';
/** Longest signer → CA path accepted (signer, intermediates, CA). */
const MAX_CHAIN = 4;

export type SignatureAlg = 'RS256' | 'EdDSA';

export interface ProfileSignature {
  alg: SignatureAlg;
  certificate: string;
  chain?: string[];
  value: string;
}

export interface SignedProfile {
  profile: Profile;
  signature: ProfileSignature;
}

export interface VerifyProfileOptions {
  /** PEM of the unit CA the device pinned when it was provisioned. */
  caCertPem: string;
  /** The device number this profile must name; omitted: any device (a technician's check). */
  device?: string;
  /** Version in force on the device; the new one must be higher. Omitted: no rollback check. */
  currentVersion?: number;
  /** Time the signer certificate must be valid at. Default: now. */
  now?: Date;
}

export type ProfileRefusalCode = Extract<
  ErrorCode,
  | 'PROFILE_UNSIGNED'
  | 'PROFILE_FOREIGN'
  | 'PROFILE_WRONG_DEVICE'
  | 'PROFILE_ROLLBACK'
  | 'PROFILE_INVALID'
  | 'PROFILE_TOO_LARGE'
>;

export type ProfileVerdict =
  | { ok: true; profile: Profile; signer: { subject: string; fingerprint256: string }; bytes: number }
  | {
      ok: false;
      code: ProfileRefusalCode;
      message: string;
      /** Known when the document parsed far enough to say. */
      device?: string;
      version?: number;
    };

/** Signs `profile` (validated first) with the signer's private key; returns the document. */
export function signProfile(
  profileValue: unknown,
  signer: { keyPem: string | KeyObject; certPem: string; chainPems?: string[] },
): SignedProfile {
  const profile = parseProfile(profileValue);
  const key = typeof signer.keyPem === 'string' ? createPrivateKey(signer.keyPem) : signer.keyPem;
  const alg = algFor(key.asymmetricKeyType);
  const data = Buffer.from(canonicalize(profile), 'utf8');
  const value = sign(alg === 'RS256' ? 'sha256' : null, data, key).toString('base64');
  return {
    profile,
    signature: {
      alg,
      certificate: signer.certPem,
      ...(signer.chainPems?.length ? { chain: signer.chainPems } : {}),
      value,
    },
  };
}

function algFor(keyType: string | undefined): SignatureAlg {
  if (keyType === 'rsa') return 'RS256';
  if (keyType === 'ed25519') return 'EdDSA';
  throw new RecorderError('CA_INVALID', `a profile signer key must be RSA or Ed25519, not ${keyType}`);
}

/** The signed profile's bytes as they travel (file, serial, MQTT): canonical JSON. */
export function encodeSignedProfile(doc: SignedProfile): Buffer {
  return Buffer.from(canonicalize(doc), 'utf8');
}

/**
 * Checks a signed profile received as bytes, in the order a device must: size, JSON, signature
 * present, chain to the pinned CA, signature, schema, device, version. Never throws for bad
 * input: returns a verdict with a refusal code (STYLE.md: boundaries turn bad input into codes).
 */
export function verifySignedProfile(
  input: Uint8Array | string,
  options: VerifyProfileOptions,
): ProfileVerdict {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input);
  if (bytes.length > MAX_SIGNED_PROFILE_BYTES) {
    return refuse(
      'PROFILE_TOO_LARGE',
      `the signed profile is ${bytes.length} bytes; the limit is ${MAX_SIGNED_PROFILE_BYTES}`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return refuse('PROFILE_INVALID', `the signed profile is not JSON: ${(error as Error).message}`);
  }
  if (!isObject(doc) || !isObject(doc.profile)) {
    return refuse('PROFILE_INVALID', 'the document has no "profile" object');
  }
  const claimed = {
    ...(typeof doc.profile.device === 'string' ? { device: doc.profile.device } : {}),
    ...(Number.isSafeInteger(doc.profile.version) ? { version: doc.profile.version as number } : {}),
  };
  const sig = doc.signature;
  if (
    !isObject(sig) ||
    typeof sig.value !== 'string' ||
    sig.value === '' ||
    typeof sig.certificate !== 'string'
  ) {
    return {
      ...refuse('PROFILE_UNSIGNED', 'the profile carries no signature with a certificate'),
      ...claimed,
    };
  }
  const chainCheck = checkChain(sig, options);
  if (!chainCheck.ok) return { ...refuse('PROFILE_FOREIGN', chainCheck.message), ...claimed };
  const signer = chainCheck.signer;

  let canonical: Buffer;
  try {
    canonical = Buffer.from(canonicalize(doc.profile), 'utf8');
  } catch (error) {
    return { ...refuse('PROFILE_INVALID', (error as Error).message), ...claimed };
  }
  const expectedAlg = algForSafe(signer.publicKey.asymmetricKeyType);
  if (sig.alg !== expectedAlg) {
    return {
      ...refuse(
        'PROFILE_FOREIGN',
        `signature alg ${String(sig.alg)} does not fit the signer key (${expectedAlg})`,
      ),
      ...claimed,
    };
  }
  let good: boolean;
  try {
    good = verify(
      expectedAlg === 'RS256' ? 'sha256' : null,
      canonical,
      signer.publicKey,
      Buffer.from(sig.value, 'base64'),
    );
  } catch {
    good = false;
  }
  if (!good) {
    return {
      ...refuse(
        'PROFILE_FOREIGN',
        'the signature does not verify with the signer certificate (altered or foreign)',
      ),
      ...claimed,
    };
  }

  let profile: Profile;
  try {
    profile = parseProfile(doc.profile);
  } catch (error) {
    return { ...refuse('PROFILE_INVALID', (error as Error).message), ...claimed };
  }
  if (options.device !== undefined && profile.device !== options.device) {
    return {
      ...refuse(
        'PROFILE_WRONG_DEVICE',
        `the profile is for device ${profile.device}, this is ${options.device}`,
      ),
      ...claimed,
    };
  }
  if (options.currentVersion !== undefined && profile.version <= options.currentVersion) {
    return {
      ...refuse(
        'PROFILE_ROLLBACK',
        `profile version ${profile.version} is not higher than version ${options.currentVersion} in force`,
      ),
      ...claimed,
    };
  }
  return {
    ok: true,
    profile,
    signer: { subject: signer.subject, fingerprint256: signer.fingerprint256 },
    bytes: bytes.length,
  };
}

function algForSafe(keyType: string | undefined): SignatureAlg | 'unsupported' {
  return keyType === 'rsa' ? 'RS256' : keyType === 'ed25519' ? 'EdDSA' : 'unsupported';
}

type ChainResult = { ok: true; signer: X509Certificate } | { ok: false; message: string };

/**
 * RFC 5280 §6 path validation, reduced to what a unit needs: each certificate is issued by the
 * next (names and signature), all are valid now, every issuer is a CA, the path ends at the
 * pinned CA (same DER), and the signer is a leaf with the profile-signing key usage.
 */
function checkChain(sig: Record<string, unknown>, options: VerifyProfileOptions): ChainResult {
  const now = options.now ?? new Date();
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(options.caCertPem);
  } catch (error) {
    return { ok: false, message: `the pinned CA certificate cannot be read: ${(error as Error).message}` };
  }
  let signer: X509Certificate;
  const intermediates: X509Certificate[] = [];
  try {
    signer = new X509Certificate(sig.certificate as string);
    if (sig.chain !== undefined) {
      if (!Array.isArray(sig.chain)) return { ok: false, message: 'signature.chain must be an array of PEM' };
      for (const pem of sig.chain) intermediates.push(new X509Certificate(String(pem)));
    }
  } catch (error) {
    return { ok: false, message: `a signer certificate cannot be read: ${(error as Error).message}` };
  }
  if (signer.ca) return { ok: false, message: 'the signer certificate is a CA, not a profile signer' };
  if (!(signer.keyUsage ?? []).includes(PROFILE_SIGNER_EKU)) {
    return {
      ok: false,
      message: `the signer certificate (${signer.subject.replace(/\n/g, ', ')}) is not a profile signer (no codeSigning extended key usage)`,
    };
  }
  let current = signer;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    const validity = validAt(current, now);
    if (validity) return { ok: false, message: validity };
    if (current.raw.equals(ca.raw)) return { ok: true, signer };
    const issuer = [ca, ...intermediates].find((c) => current.checkIssued(c) && current.verify(c.publicKey));
    if (!issuer) {
      return {
        ok: false,
        message: `the certificate ${current.subject.replace(/\n/g, ', ')} is not issued by the pinned unit CA (${ca.subject.replace(/\n/g, ', ')})`,
      };
    }
    if (!issuer.ca) return { ok: false, message: `the issuer ${issuer.subject} is not a CA` };
    current = issuer;
  }
  return { ok: false, message: 'the certificate chain is too long' };
}

function validAt(cert: X509Certificate, now: Date): string | null {
  if (now < new Date(cert.validFrom))
    return `the certificate ${cert.subject} is not valid before ${cert.validFrom}`;
  if (now > new Date(cert.validTo)) return `the certificate ${cert.subject} expired on ${cert.validTo}`;
  return null;
}

function refuse(code: ProfileRefusalCode, message: string): ProfileVerdict {
  return { ok: false, code, message };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
