/**
 * Where things live inside a device's state directory. The one place for these names
 * (balena-supervisor keeps its host paths in one module; so do we).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface StatePaths {
  root: string;
  keysDir: string;
  privateKey: string;
  publicKey: string;
  journal: string;
  db: string;
  /** Unix socket for `recorder device press|status|dock|undock` from another shell */
  controlSocket: string;
  /** encrypted, sealed evidence (flash); the profile's storage.evidenceDir by default */
  evidenceDir: string;
  /** Provisioning (issue 7): the device number, set once by the service port. */
  identity: string;
  /** RSA key of the device's TLS client certificate (0600). */
  tlsKey: string;
  tlsCsr: string;
  tlsCert: string;
  /** CA chain delivered with the certificate, leaf's issuer first. */
  caChain: string;
  /** The unit CA pinned at provisioning: profiles and the gateway must chain to it. */
  caCert: string;
  /** The signed profile in force (replaced atomically). */
  profile: string;
  /** Partial uploads over the service port, resumable after a pulled cable. */
  stagingDir: string;
}

export function statePaths(root: string): StatePaths {
  const keysDir = join(root, 'keys');
  return {
    root,
    keysDir,
    privateKey: join(keysDir, 'device-signing.key.pem'),
    publicKey: join(keysDir, 'device-signing.pub.pem'),
    journal: join(root, 'journal.jsonl'),
    db: join(root, 'state.json'),
    controlSocket: join(root, 'control.sock'),
    evidenceDir: join(root, 'evidence'),
    identity: join(root, 'identity.json'),
    tlsKey: join(keysDir, 'device-tls.key.pem'),
    tlsCsr: join(root, 'identity', 'device.csr.pem'),
    tlsCert: join(root, 'identity', 'device.cert.pem'),
    caChain: join(root, 'identity', 'chain.pem'),
    caCert: join(root, 'identity', 'unit-ca.cert.pem'),
    profile: join(root, 'profile.signed.json'),
    stagingDir: join(root, 'staging'),
  };
}

/** RAM file system for the plaintext spool: plaintext never reaches flash (DESIGN.md "Sealing"). */
export const RAM_DIR = '/dev/shm';

/**
 * The default plaintext spool for a state directory: under /dev/shm when the machine has it, else
 * the temp dir. Named after a hash of the state directory so two simulated recorders on one
 * machine never share a spool.
 */
export function defaultSpoolDir(root: string, ramDir = RAM_DIR): string {
  const id = createHash('sha256').update(resolve(root)).digest('hex').slice(0, 12);
  return join(existsSync(ramDir) ? ramDir : tmpdir(), `recorder-spool-${id}`);
}
