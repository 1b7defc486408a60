/**
 * Wires sealing up for the device runner at start: the state store (profile in force, key
 * references), the evidence and spool directories, the Sealer, and start-up recovery of the spool.
 */
import { createPublicKey } from 'node:crypto';
import { mkdirSync, statfsSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { StorageReading } from '../../hardware/storage.ts';
import { RecorderError } from '../../protocol/errors.ts';
import type { Profile } from '../../protocol/schemas/profile.ts';
import { keyFingerprint } from '../keys.ts';
import { statePaths } from '../state-paths.ts';
import { StateStore } from '../state-store.ts';
import { recoverSpool, type RecoveryReport } from './recover-spool.ts';
import { Sealer, type JournalAppender } from './sealer.ts';

/** statfs f_type of tmpfs and ramfs (linux/magic.h) */
const RAM_FS_TYPES = new Set([0x01021994, 0x858458f6]);

export interface StartSealingOptions {
  profile: Profile;
  /** the device state directory (journal, keys, state.json) */
  stateDir: string;
  /** the device journal, opened by the runner (one writer per journal) */
  journal: JournalAppender & { readonly path: string };
  /**
   * Refuse a spool that is not on tmpfs/ramfs: plaintext never reaches flash (DESIGN.md
   * "Sealing"). Default true.
   */
  requireRamSpool?: boolean;
  /** Default `() => new Date()`. */
  now?: () => Date;
}

export interface SealingService {
  sealer: Sealer;
  state: StateStore;
  recovery: RecoveryReport;
  evidenceDir: string;
  spoolDir: string;
}

export async function startSealing(options: StartSealingOptions): Promise<SealingService> {
  const { profile } = options;
  const paths = statePaths(options.stateDir);
  const evidenceDir = profile.storage.evidenceDir;
  const spoolDir = profile.storage.spoolDir;
  mkdirSync(evidenceDir, { recursive: true, mode: 0o700 });
  mkdirSync(spoolDir, { recursive: true, mode: 0o700 });
  if ((options.requireRamSpool ?? true) && !isRamFileSystem(spoolDir)) {
    throw new RecorderError(
      'SPOOL_NOT_RAM',
      `/storage/spoolDir ${spoolDir} is not on tmpfs or ramfs: plaintext would reach flash. ` +
        'Put the spool under /dev/shm (or mount a tmpfs there)',
      { path: '/storage/spoolDir', spoolDir },
    );
  }
  const state = await StateStore.open(paths.db);
  await state.setProfile({
    id: `${profile.unit}/${profile.device}`,
    version: profile.version,
    evidenceDir,
    spoolDir,
  });
  const centerKey = createPublicKey(profile.centerPublicKey);
  const signing = createPublicKey({ key: await readText(paths.publicKey), format: 'pem' });
  await state.setKeys({
    signingPublicKey: paths.publicKey,
    signingFingerprint: keyFingerprint(signing),
    centerFingerprint: keyFingerprint(centerKey),
  });
  const sealer = new Sealer({
    evidenceDir,
    journal: options.journal,
    centerPublicKey: centerKey,
    state,
    uploadDeadlineHours: profile.uploadDeadlineHours,
    ...(options.now ? { now: options.now } : {}),
  });
  const recovery = await recoverSpool(spoolDir, {
    sealer,
    journal: options.journal,
    officer: profile.officers[0]!,
    state,
    uploadDeadlineHours: profile.uploadDeadlineHours,
    ...(options.now ? { now: options.now } : {}),
  });
  return { sealer, state, recovery, evidenceDir, spoolDir };
}

export function isRamFileSystem(dir: string): boolean {
  return RAM_FS_TYPES.has(statfsSync(dir).type);
}

/** A StorageReading of the evidence volume (statfs) and the evidence dir's own size, for the guard. */
export async function readEvidenceStorage(evidenceDir: string): Promise<StorageReading> {
  const s = statfsSync(evidenceDir);
  let evidenceBytes = 0;
  for (const name of await readdir(evidenceDir)) {
    const info = await stat(join(evidenceDir, name)).catch(() => null);
    if (info?.isFile()) evidenceBytes += info.size;
  }
  return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize, evidenceBytes };
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    throw new RecorderError('KEY_MISSING', `device public key ${path} does not exist`, { path });
  }
}
