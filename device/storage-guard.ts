/**
 * The storage guard (DESIGN.md "Storage guard", R16, R18): a pure decision from one storage
 * reading and the profile's limits. Below the reserve: warn. Below the minimum: refuse to start a
 * recording, and say why.
 *
 * It decides and never acts: there is deliberately no eviction here. Evidence no gateway has
 * receipted is never overwritten or deleted to make room (a body camera is not a dash camera,
 * HN 26 / SX 26); only an upload receipt removes a local copy.
 */
import type { StorageReading } from '../hardware/storage.ts';

export type StorageLevel = 'ok' | 'warn' | 'refuse';

export interface StorageLimits {
  /** profile storage.reserveMB: warn below this much free space */
  reserveMB: number;
  /** profile storage.minimumMB: refuse to start a recording below this */
  minimumMB: number;
}

export interface StorageVerdict {
  level: StorageLevel;
  /** whole MiB free, rounded down */
  freeMB: number;
  /** code for status and journal: STORAGE_LOW below the minimum, null otherwise */
  code: 'STORAGE_LOW' | null;
  /** for the officer and the status line; empty when ok */
  reason: string;
  /** may a new recording start? */
  mayStartRecording: boolean;
}

const MiB = 1024 * 1024;

export function assessStorage(reading: StorageReading, limits: StorageLimits): StorageVerdict {
  const freeMB = Math.floor(Math.max(0, reading.freeBytes) / MiB);
  const evidenceMB = Math.ceil(Math.max(0, reading.evidenceBytes) / MiB);
  if (reading.freeBytes < limits.minimumMB * MiB) {
    return {
      level: 'refuse',
      freeMB,
      code: 'STORAGE_LOW',
      reason:
        `only ${freeMB} MB free, below the minimum of ${limits.minimumMB} MB: recording refused. ` +
        `${evidenceMB} MB of evidence awaits upload and is never deleted to make room; dock the recorder`,
      mayStartRecording: false,
    };
  }
  if (reading.freeBytes < limits.reserveMB * MiB) {
    return {
      level: 'warn',
      freeMB,
      code: null,
      reason: `${freeMB} MB free, below the reserve of ${limits.reserveMB} MB: dock the recorder soon to upload`,
      mayStartRecording: true,
    };
  }
  return { level: 'ok', freeMB, code: null, reason: '', mayStartRecording: true };
}
