/**
 * An evidence-center key pair for simulation and tests (`recorder keys center`). The real center
 * keeps its private key off the device; the device only ever holds the public key (profile
 * `centerPublicKey`) and wraps every segment key to it with RSA-OAEP-SHA256.
 */
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RecorderError } from '../protocol/errors.ts';
import { CENTER_KEY_MIN_BITS } from '../protocol/evidence-format.ts';
import { writeNewFileDurable } from './fs-durable.ts';
import { keyFingerprint } from './keys.ts';

export const CENTER_PRIVATE_KEY_FILE = 'center.key.pem';
export const CENTER_PUBLIC_KEY_FILE = 'center.pub.pem';

export interface CenterKeyFiles {
  privateKey: string;
  publicKey: string;
  /** hex SHA-256 of the public key's DER SubjectPublicKeyInfo */
  fingerprint: string;
}

/** Writes DIR/center.key.pem (0600, PKCS#8) and DIR/center.pub.pem (SPKI). Never overwrites. */
export function createCenterKeyPair(dir: string, bits = CENTER_KEY_MIN_BITS): CenterKeyFiles {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = {
    privateKey: join(dir, CENTER_PRIVATE_KEY_FILE),
    publicKey: join(dir, CENTER_PUBLIC_KEY_FILE),
  };
  for (const path of Object.values(files)) {
    if (existsSync(path)) {
      throw new RecorderError(
        'CLI_USAGE',
        `${path} exists; a key is never overwritten: choose another --out`,
        {
          path,
        },
      );
    }
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  writeNewFileDurable(files.privateKey, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  writeNewFileDurable(files.publicKey, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644);
  return { ...files, fingerprint: keyFingerprint(publicKey) };
}
