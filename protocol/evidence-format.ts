/**
 * The sealed-evidence file format (README "Sealed evidence files"). Pure: building and parsing the
 * header, and the streaming decipher (bytes in, plaintext out, no I/O) that both the device's
 * tools (device/sealing/evidence-file.ts) and the center's ingest check (gateway/) drive.
 *
 * ```
 * offset  size  field
 * 0       8     magic "RECSEAL1" (ASCII)
 * 8       1     format version = 1
 * 9       1     algorithm = 1: AES-256-GCM content, key wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256)
 * 10      2     N = length of the wrapped key, big-endian (384 for an RSA-3072 center key)
 * 12      N     wrapped key: RSA-OAEP-SHA256 encryption of the 32-byte AES key
 * 12+N    12    GCM IV (random)
 * 24+N    ...   ciphertext (same length as the plaintext)
 * end-16  16    GCM authentication tag
 * ```
 *
 * The whole header (bytes 0 … 23+N) is the GCM additional authenticated data, so a changed header
 * byte fails authentication like a changed ciphertext byte.
 */
import {
  constants,
  createDecipheriv,
  createHash,
  privateDecrypt,
  publicEncrypt,
  type DecipherGCM,
  type Hash,
  type KeyObject,
} from 'node:crypto';
import { RecorderError } from './errors.ts';

export const EVIDENCE_MAGIC = Buffer.from('RECSEAL1', 'ascii');
export const EVIDENCE_VERSION = 1;
/** AES-256-GCM, content key wrapped with RSA-OAEP-SHA256 */
export const EVIDENCE_ALG_AES256GCM_RSAOAEP256 = 1;
export const EVIDENCE_IV_BYTES = 12;
export const EVIDENCE_TAG_BYTES = 16;
export const EVIDENCE_KEY_BYTES = 32;
/** The file name suffix of sealed evidence. */
export const EVIDENCE_SUFFIX = '.rse';
/** The smallest center key accepted: RSA-3072 (NIST SP 800-57: 128-bit security). */
export const CENTER_KEY_MIN_BITS = 3072;

export interface EvidenceHeader {
  version: number;
  algorithm: number;
  wrappedKey: Buffer;
  iv: Buffer;
  /** the header bytes, which are also the GCM additional authenticated data */
  bytes: Buffer;
}

export function buildEvidenceHeader(wrappedKey: Buffer, iv: Buffer): Buffer {
  if (iv.length !== EVIDENCE_IV_BYTES) throw new RangeError('the GCM IV must be 12 bytes');
  if (wrappedKey.length > 0xffff) throw new RangeError('wrapped key too long');
  const fixed = Buffer.alloc(12);
  EVIDENCE_MAGIC.copy(fixed, 0);
  fixed[8] = EVIDENCE_VERSION;
  fixed[9] = EVIDENCE_ALG_AES256GCM_RSAOAEP256;
  fixed.writeUInt16BE(wrappedKey.length, 10);
  return Buffer.concat([fixed, wrappedKey, iv]);
}

/** Length of the header given its first 12 bytes, or an error for a foreign file. */
export function evidenceHeaderLength(first12: Buffer, file = 'evidence file'): number {
  if (first12.length < 12 || !first12.subarray(0, 8).equals(EVIDENCE_MAGIC)) {
    throw new RecorderError('EVIDENCE_BAD_FORMAT', `${file} does not start with RECSEAL1`, { file });
  }
  if (first12[8] !== EVIDENCE_VERSION || first12[9] !== EVIDENCE_ALG_AES256GCM_RSAOAEP256) {
    throw new RecorderError(
      'EVIDENCE_BAD_FORMAT',
      `${file} has version ${first12[8]} algorithm ${first12[9]}; this software reads version 1 algorithm 1`,
      { file },
    );
  }
  return 12 + first12.readUInt16BE(10) + EVIDENCE_IV_BYTES;
}

export function parseEvidenceHeader(bytes: Buffer, file = 'evidence file'): EvidenceHeader {
  const length = evidenceHeaderLength(bytes.subarray(0, 12), file);
  if (bytes.length < length) {
    throw new RecorderError('EVIDENCE_BAD_FORMAT', `${file} is shorter than its header`, { file });
  }
  const n = bytes.readUInt16BE(10);
  return {
    version: bytes[8]!,
    algorithm: bytes[9]!,
    wrappedKey: bytes.subarray(12, 12 + n),
    iv: bytes.subarray(12 + n, length),
    bytes: bytes.subarray(0, length),
  };
}

/** RSA-OAEP with SHA-256 for both the hash and MGF1: `openssl pkeyutl -pkeyopt rsa_oaep_md:sha256`. */
export function wrapContentKey(contentKey: Buffer, centerPublicKey: KeyObject): Buffer {
  return publicEncrypt(
    { key: centerPublicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    contentKey,
  );
}

export function unwrapContentKey(
  wrappedKey: Buffer,
  centerPrivateKey: KeyObject,
  file = 'evidence file',
): Buffer {
  let key: Buffer;
  try {
    key = privateDecrypt(
      { key: centerPrivateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      wrappedKey,
    );
  } catch (error) {
    throw new RecorderError(
      'EVIDENCE_DECRYPT_FAILED',
      `cannot unwrap the content key of ${file} (another center's key?): ${(error as Error).message}`,
      { file },
    );
  }
  if (key.length !== EVIDENCE_KEY_BYTES) {
    throw new RecorderError('EVIDENCE_DECRYPT_FAILED', `${file}: the unwrapped key is not 32 bytes`, {
      file,
    });
  }
  return key;
}

/** Why a center public key cannot be used for sealing, or null when it can. */
export function centerKeyProblem(key: KeyObject): string | null {
  if (key.type !== 'public') return 'is not a public key';
  if (key.asymmetricKeyType !== 'rsa') {
    return `is a ${key.asymmetricKeyType} key; sealing wraps keys with RSA-OAEP and needs an RSA key`;
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < CENTER_KEY_MIN_BITS) return `is RSA-${bits}; at least RSA-${CENTER_KEY_MIN_BITS} is required`;
  return null;
}

/**
 * Streaming decryption of one sealed file: the caller reads the header, the tag (the last 16
 * bytes) and then the ciphertext in pieces of any size; `final()` checks the GCM tag. Nothing is
 * buffered here beyond what OpenSSL holds, so a 1 GiB segment costs the caller's chunk size.
 * Plaintext handed out before `final()` succeeded is unauthenticated: hash it or write it under a
 * temporary name, never show it as evidence.
 */
export class EvidenceDecipher {
  private readonly decipher: DecipherGCM;
  private readonly hash: Hash = createHash('sha256');
  private plainBytes = 0;

  constructor(
    header: EvidenceHeader,
    tag: Buffer,
    centerPrivateKey: KeyObject,
    private readonly file = 'evidence file',
  ) {
    if (tag.length !== EVIDENCE_TAG_BYTES) throw new RangeError('the GCM tag must be 16 bytes');
    const key = unwrapContentKey(header.wrappedKey, centerPrivateKey, file);
    this.decipher = createDecipheriv('aes-256-gcm', key, header.iv);
    this.decipher.setAAD(header.bytes);
    this.decipher.setAuthTag(tag);
  }

  /** Ciphertext in (without header and tag), plaintext out; the plaintext is hashed on the way. */
  update(ciphertext: Buffer): Buffer {
    const plain = this.decipher.update(ciphertext);
    this.hash.update(plain);
    this.plainBytes += plain.length;
    return plain;
  }

  /** Checks the tag: throws EVIDENCE_DECRYPT_FAILED for a file altered after sealing. */
  final(): { sha256: string; bytes: number } {
    try {
      this.decipher.final();
    } catch {
      throw new RecorderError(
        'EVIDENCE_DECRYPT_FAILED',
        `${this.file}: the GCM tag does not verify; the file was altered after sealing`,
        { file: this.file },
      );
    }
    return { sha256: this.hash.digest('hex'), bytes: this.plainBytes };
  }
}
