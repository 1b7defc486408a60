/**
 * Small device state in lowdb (DESIGN.md "Local state"): the profile in force, key references, the
 * upload queue (only items no gateway has receipted yet), counters, and the journal's last known
 * head. Bounded by construction: history lives in the journal, never here.
 *
 * The adapter is constructed explicitly: lowdb's JSONFilePreset keeps data in memory and never
 * writes the file when NODE_ENV=test (STACK-NOTES "lowdb"), and lowdb's JSONFile never fsyncs, so
 * a power cut could leave an empty state file the recorder refuses to start with. DurableJsonFile
 * fsyncs every write.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Low } from 'lowdb';
import { RecorderError } from '../protocol/errors.ts';
import { DurableJsonFile } from './durable-json-file.ts';

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
  /**
   * The event the item belongs to (the sealed entry's `body.event`), or null when not known: a
   * state file written before items carried it (start-up recovery fills it in from the journal).
   */
  event: string | null;
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
  /**
   * Issue 6: events with at least one mark; every queued item of such an event uploads before any
   * item of an unmarked one. Only events that still have queued items (pruned as they are
   * receipted); the journal's `mark` entries are the record, this is the index the uploader reads.
   */
  markedEvents: string[];
}

export function emptyState(): DeviceState {
  return {
    format: STATE_FORMAT,
    profile: null,
    keys: null,
    uploadQueue: [],
    counters: {},
    journalHead: null,
    markedEvents: [],
  };
}

/**
 * A state file from before issue 6 holds items without `event` and no `markedEvents`: they load
 * as items of no known event, nothing marked. Anything malformed is dropped from the mark set
 * rather than refusing the whole file (the journal is the record; recovery rebuilds the set).
 */
function normalise(d: DeviceState): void {
  if (!Array.isArray(d.uploadQueue)) d.uploadQueue = [];
  d.uploadQueue = d.uploadQueue.map((i) => ({ ...i, event: typeof i.event === 'string' ? i.event : null }));
  d.markedEvents = Array.isArray(d.markedEvents)
    ? [...new Set(d.markedEvents.filter((e): e is string => typeof e === 'string' && e !== ''))]
    : [];
}

export class StateStore {
  private constructor(
    private readonly db: Low<DeviceState>,
    readonly path: string,
  ) {}

  /** Opens the state file, creating it with empty state when it does not exist. Throws STATE_INVALID. */
  static async open(path: string): Promise<StateStore> {
    mkdirSync(dirname(path), { recursive: true });
    const db = new Low<DeviceState>(new DurableJsonFile<DeviceState>(path), emptyState());
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
    normalise(db.data);
    await db.write();
    return new StateStore(db, path);
  }

  /** Reads a state file without creating or changing it; empty state when it does not exist. */
  static async peek(path: string): Promise<DeviceState> {
    const db = new Low<DeviceState>(new DurableJsonFile<DeviceState>(path), emptyState());
    try {
      await db.read();
    } catch (error) {
      throw new RecorderError('STATE_INVALID', `${path} is not JSON (${(error as Error).message})`, { path });
    }
    const data = { ...emptyState(), ...db.data };
    normalise(data);
    return data;
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

  /**
   * Drops a receipted item. Returns whether it was queued. Its event leaves the mark set when no
   * queued item of it is left (the recorder marks it again if the event goes on and seals more).
   */
  async removeUpload(file: string): Promise<boolean> {
    const item = this.db.data.uploadQueue.find((i) => i.file === file);
    if (item) {
      await this.db.update((d) => {
        d.uploadQueue = d.uploadQueue.filter((i) => i.file !== file);
        if (item.event !== null && !d.uploadQueue.some((i) => i.event === item.event))
          d.markedEvents = d.markedEvents.filter((e) => e !== item.event);
      });
    }
    return item !== undefined;
  }

  /** Issue 6: the event has a mark; its queued items (and those sealed later) upload first. */
  async markEvent(event: string): Promise<void> {
    if (this.db.data.markedEvents.includes(event)) return;
    await this.db.update((d) => {
      d.markedEvents = [...d.markedEvents, event];
    });
  }

  /** Whether an item uploads with the marked events. */
  isMarked(item: Pick<UploadItem, 'event'>): boolean {
    return item.event !== null && this.db.data.markedEvents.includes(item.event);
  }

  /**
   * Start-up (recover-spool.ts): brings the queue and the mark set in line with the journal, the
   * record that survives a crash between a journal entry and this file's write. `eventOf` gives an
   * item's event from its sealed entry (items of old state files lack it); `journalMarked` are the
   * events the journal has `mark` entries for. The mark set keeps only events with queued items.
   */
  async reconcileEvents(
    eventOf: (file: string) => string | null,
    journalMarked: ReadonlySet<string>,
  ): Promise<void> {
    const queue = this.db.data.uploadQueue.map((i) =>
      i.event === null ? { ...i, event: eventOf(i.file) } : i,
    );
    const queuedEvents = new Set(queue.map((i) => i.event));
    const marked = [...new Set([...this.db.data.markedEvents, ...journalMarked])].filter((e) =>
      queuedEvents.has(e),
    );
    const same =
      queue.every((i, n) => i.event === this.db.data.uploadQueue[n]!.event) &&
      marked.length === this.db.data.markedEvents.length &&
      marked.every((e, n) => e === this.db.data.markedEvents[n]);
    if (same) return;
    await this.db.update((d) => {
      d.uploadQueue = queue;
      d.markedEvents = marked;
    });
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
