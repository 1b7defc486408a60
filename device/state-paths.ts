/**
 * Where things live inside a device's state directory. The one place for these names
 * (balena-supervisor keeps its host paths in one module; so do we).
 */
import { join } from 'node:path';

export interface StatePaths {
  root: string;
  keysDir: string;
  privateKey: string;
  publicKey: string;
  journal: string;
  db: string;
  /** Unix socket for `recorder device press|status|dock|undock` from another shell */
  controlSocket: string;
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
  };
}
