/**
 * Small device state in lowdb (DESIGN.md "Local state"): the profile in force, key references, the
 * upload queue (only items no gateway has receipted yet), counters, and the journal's last known
 * head. Bounded by construction: history lives in the journal, never here.
 *
 * The adapter is constructed explicitly: lowdb's JSONFilePreset keeps data in memory and never
 * writes the file when NODE_ENV=test (STACK-NOTES "lowdb").
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import { RecorderError } from '../protocol/errors.ts';

export const STATE_FORMAT = 'recorder-state/1';

export interface ProfileInForce {
  /** `unit/device` of the profile */
  id: string;
  version: number;
  evidenceDir: string;
  spoolDir: string;
}

export interface KeyReferences {
  /** path of the device's Ed25519 public key */
  signingPublicKey: string;
  /** hex SHA-256 of the DER SubjectPublicKeyInfo */
  signingFingerprint: string;
  /** hex SHA-256 of the center's public key DER, the key evidence is wrapped to */
  centerFingerprint: string;
}

export interface UploadItem {
  /** evidence file name inside the evidence dir */
  file: string;
  /** SHA-256 of the evidence file (what the gateway checks) */
  sha256: string;
  bytes: number;
  kind: string;
  /** journal seq of the entry that sealed it */
  seq: number;
  sealedAt: string;
  /** HN 23 / SX 19: sealedAt + uploadDeadlineHours */
  deadline: string;
}

export interface JournalHeadRef {
  seq: number;
  hash: string;
}

export interface DeviceState {
  format: typeof STATE_FORMAT;
  profile: ProfileInForce | null;
  keys: KeyReferences | null;
  uploadQueue: UploadItem[];
  counters: Record<string, number>;
  journalHead: JournalHeadRef | null;
}

export function emptyState(): DeviceState {
  return {
    format: STATE_FORMAT,
    profile: null,
    keys: null,
    uploadQueue: [],
    counters: {},
    journalHead: null,
  };
}

export class StateStore {
  private constructor(
    private readonly db: Low<DeviceState>,
    readonly path: string,
  ) {}

  /** Opens the state file, creating it with empty state when it does not exist. Throws STATE_INVALID. */
  static async open(path: string): Promise<StateStore> {
    mkdirSync(dirname(path), { recursive: true });
    const db = new Low<DeviceState>(new JSONFile<DeviceState>(path), emptyState());
    try {
      await db.read();
    } catch (error) {
      throw new RecorderError(
        'STATE_INVALID',
        `${path} is not JSON (${(error as Error).message}); move it aside`,
        {
          path,
        },
      );
    }
    const data = db.data as Partial<DeviceState> | null;
    if (
      typeof data !== 'object' ||
      data === null ||
      Array.isArray(data) ||
      (data.format ?? STATE_FORMAT) !== STATE_FORMAT
    ) {
      throw new RecorderError('STATE_INVALID', `${path} is not a ${STATE_FORMAT} file`, { path });
    }
    db.data = { ...emptyState(), ...data, format: STATE_FORMAT };
    if (!Array.isArray(db.data.uploadQueue)) db.data.uploadQueue = [];
    await db.write();
    return new StateStore(db, path);
  }

  /** Reads a state file without creating or changing it; empty state when it does not exist. */
  static async peek(path: string): Promise<DeviceState> {
    const db = new Low<DeviceState>(new JSONFile<DeviceState>(path), emptyState());
    try {
      await db.read();
    } catch (error) {
      throw new RecorderError('STATE_INVALID', `${path} is not JSON (${(error as Error).message})`, { path });
    }
    return { ...emptyState(), ...db.data };
  }

  get data(): Readonly<DeviceState> {
    return this.db.data;
  }

  setProfile(profile: ProfileInForce): Promise<void> {
    return this.db.update((d) => {
      d.profile = { ...profile };
    });
  }

  setKeys(keys: KeyReferences): Promise<void> {
    return this.db.update((d) => {
      d.keys = { ...keys };
    });
  }

  /** Adds an item to the upload queue; an item for the same file replaces the old one. */
  enqueueUpload(item: UploadItem): Promise<void> {
    return this.db.update((d) => {
      d.uploadQueue = [...d.uploadQueue.filter((i) => i.file !== item.file), { ...item }];
    });
  }

  /** Drops a receipted item. Returns whether it was queued. */
  async removeUpload(file: string): Promise<boolean> {
    const had = this.db.data.uploadQueue.some((i) => i.file === file);
    if (had) {
      await this.db.update((d) => {
        d.uploadQueue = d.uploadQueue.filter((i) => i.file !== file);
      });
    }
    return had;
  }

  count(name: string, by = 1): Promise<void> {
    return this.db.update((d) => {
      d.counters[name] = (d.counters[name] ?? 0) + by;
    });
  }

  /** The journal's head after the last entry this device wrote; `verify` detects truncation with it. */
  setJournalHead(head: JournalHeadRef): Promise<void> {
    return this.db.update((d) => {
      if (d.journalHead === null || head.seq >= d.journalHead.seq) d.journalHead = { ...head };
    });
  }
}
