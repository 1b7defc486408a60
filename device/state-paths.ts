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
