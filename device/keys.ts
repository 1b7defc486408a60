/**
 * The device's Ed25519 evidence-signing key (DESIGN.md "Identity, keys and trust").
 * Generated at first start with node:crypto; the private key file must stay mode 0600, and the
 * device refuses to start when it is readable by anyone else.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { RecorderError } from '../protocol/errors.ts';
import { writeNewFileDurable } from './fs-durable.ts';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
  /** hex SHA-256 of the DER SubjectPublicKeyInfo */
  fingerprint: string;
  created: boolean;
}

export function keyFingerprint(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** Loads the key pair, creating it first when neither file exists. */
export function loadOrCreateSigningKey(privatePath: string, publicPath: string): SigningKey {
  if (!existsSync(privatePath)) {
    if (existsSync(publicPath)) {
      throw new RecorderError(
        'KEY_MISSING',
        `${privatePath} is missing but ${publicPath} exists: the device's identity was lost. ` +
          'Restore the private key from backup or re-provision the device; a new key is not created silently',
        { path: privatePath },
      );
    }
    mkdirSync(dirname(privatePath), { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    writeNewFileDurable(privatePath, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    writeNewFileDurable(publicPath, publicKeyPem, 0o644);
    return { privateKey, publicKey, publicKeyPem, fingerprint: keyFingerprint(publicKey), created: true };
  }
  const privateKey = loadPrivateKey(privatePath);
  const publicKey = createPublicKey(privateKey);
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  return { privateKey, publicKey, publicKeyPem, fingerprint: keyFingerprint(publicKey), created: false };
}

/** Reads a PEM private key, refusing one whose file is readable or writable by group or others. */
export function loadPrivateKey(path: string): KeyObject {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    throw new RecorderError('KEY_MISSING', `private key ${path} does not exist`, { path });
  }
  if (mode & 0o077) {
    throw new RecorderError(
      'KEY_PERMISSIONS',
      `private key ${path} has mode ${mode.toString(8).padStart(4, '0')}; ` +
        `it must be readable by its owner only: run chmod 600 ${path}`,
      { path, mode },
    );
  }
  try {
    return createPrivateKey(readFileSync(path));
  } catch (error) {
    throw new RecorderError('KEY_INVALID', `${path} is not a PEM private key: ${(error as Error).message}`, {
      path,
    });
  }
}

export function loadPublicKey(path: string): KeyObject {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch {
    throw new RecorderError('KEY_MISSING', `public key ${path} does not exist`, { path });
  }
  try {
    return createPublicKey(pem);
  } catch (error) {
    throw new RecorderError('KEY_INVALID', `${path} is not a PEM public key: ${(error as Error).message}`, {
      path,
    });
  }
}
