/**
 * One recorder as the evidence tests and the upload bench need it: an Ed25519 evidence key bound
 * into a device certificate of the unit CA, a real journal, and segments sealed by the real Sealer
 * (AES-256-GCM, key wrapped to the test center key), each kept as a pending upload with its
 * journal entry; `uploader()` builds the real Uploader over them.
 */
import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JournalWriter } from '../../device/journal-writer.ts';
import { Sealer, type SealMeta } from '../../device/sealing/sealer.ts';
import { StateStore } from '../../device/state-store.ts';
import { Uploader, type PendingUpload, type UploaderOptions } from '../../device/uploader.ts';
import { issueCertificate, writeIssued } from '../../gateway/ca.ts';
import type { JournalEntry, JsonObject } from '../../protocol/journal-entry.ts';
import { testCenterKeys } from './media.ts';
import { sealMeta } from './sealing.ts';

export interface SealedDeviceOptions {
  id: string;
  /** the device's folder: spool/, evidence/, tls/ and journal.jsonl go below it */
  dir: string;
  /** the unit CA folder that issues the device's certificate */
  caDir: string;
  /** the key segment keys are wrapped to; default the test center key (testCenterKeys) */
  centerPublicKey?: KeyObject;
}

/** What the Uploader needs from outside the device; the rest comes from the device. */
export type DeviceUploaderOptions = Omit<
  UploaderOptions,
  'device' | 'evidenceDir' | 'pending' | 'entryFor' | 'journal' | 'forget' | 'journalPath'
>;

export interface SealedDevice {
  id: string;
  dir: string;
  keys: { publicKey: KeyObject; privateKey: KeyObject };
  certPem: string;
  /** the device's TLS files (certificate, key, CA), for a real MQTT connection */
  tls: { cert: string; key: string; ca: string };
  journal: JournalWriter;
  journalPath: string;
  spoolDir: string;
  evidenceDir: string;
  /** the device's state store: the real Sealer queues each sealed item here, as on a recorder */
  state: StateStore;
  /** sealed and not yet receipted, oldest first */
  items: PendingUpload[];
  entries: Map<string, JournalEntry>;
  /** seals the plaintext at `spoolPath` (which the Sealer then deletes) */
  sealFile(spoolPath: string, meta: SealMeta): Promise<PendingUpload>;
  /** seals one more 10 s segment of `bytes` random bytes */
  seal(bytes: number): Promise<PendingUpload>;
  /** the real Uploader of `items`; it forgets an item once its receipt is journalled */
  uploader(options: DeviceUploaderOptions): Uploader;
}

/** The caller closes `journal` (a test: in its teardown). */
export async function sealedDevice(options: SealedDeviceOptions): Promise<SealedDevice> {
  const { id, dir } = options;
  const spoolDir = join(dir, 'spool');
  const evidenceDir = join(dir, 'evidence');
  mkdirSync(spoolDir, { recursive: true });
  mkdirSync(evidenceDir, { recursive: true });
  const keys = generateKeyPairSync('ed25519');
  const issued = issueCertificate(options.caDir, {
    role: 'device',
    id,
    evidencePublicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }) as string,
  });
  const tls = writeIssued(join(dir, 'tls'), 'device', id, issued);
  const journalPath = join(dir, 'journal.jsonl');
  const journal = await JournalWriter.open({ path: journalPath, device: id, privateKey: keys.privateKey });
  const state = await StateStore.open(join(dir, 'state.json'));
  const sealer = new Sealer({
    evidenceDir,
    journal,
    centerPublicKey: options.centerPublicKey ?? testCenterKeys().publicKey,
    state,
  });
  const items: PendingUpload[] = [];
  const entries = new Map<string, JournalEntry>();
  let segments = 0;

  const sealFile = async (spoolPath: string, meta: SealMeta): Promise<PendingUpload> => {
    const { entry } = await sealer.seal(spoolPath, meta);
    const evidence = (entry.body as { evidence: { file: string; bytes: number; sha256: string } }).evidence;
    const item: PendingUpload = {
      file: evidence.file,
      sha256: evidence.sha256,
      bytes: evidence.bytes,
      seq: entry.seq,
      sealedAt: entry.time,
    };
    items.push(item);
    entries.set(item.file, entry);
    return item;
  };

  return {
    id,
    dir,
    keys,
    certPem: issued.certPem,
    tls: { cert: tls.cert, key: tls.key!, ca: tls.ca },
    journal,
    journalPath,
    spoolDir,
    evidenceDir,
    state,
    items,
    entries,
    sealFile,
    seal: async (bytes) => {
      const segment = segments++;
      const spoolPath = join(spoolDir, `seg-${segment}.ts`);
      writeFileSync(spoolPath, randomBytes(bytes));
      const start = new Date(Date.parse('2026-11-22T10:00:00.000Z') + segment * 10_000);
      return sealFile(spoolPath, sealMeta({ segment, start, end: new Date(start.getTime() + 10_000) }));
    },
    uploader: (uploaderOptions) =>
      new Uploader({
        device: id,
        evidenceDir,
        ...queueOptions({ items, entries }),
        journal,
        journalPath,
        ...uploaderOptions,
      }),
  };
}

/** A list of items as the Uploader's queue: it forgets an item once its receipt is journalled. */
export function queueOptions(list: {
  items: PendingUpload[];
  entries: Map<string, JournalEntry>;
}): Pick<UploaderOptions, 'pending' | 'entryFor' | 'forget'> {
  const { items, entries } = list;
  return {
    pending: () => items,
    entryFor: async (item) => entries.get(item.file)!,
    forget: async (file) =>
      items.splice(
        items.findIndex((i) => i.file === file),
        1,
      ),
  };
}

/**
 * Items of `sizes` random bytes, each named by a `segment` entry of event E1 in `journal`, without
 * the Sealer: for tests of the upload exchange alone (any signer, any bytes).
 */
export async function fakeSegments(
  journal: JournalWriter,
  evidenceDir: string,
  sizes: readonly number[],
  body: JsonObject = {},
): Promise<{ items: PendingUpload[]; entries: Map<string, JournalEntry> }> {
  const items: PendingUpload[] = [];
  const entries = new Map<string, JournalEntry>();
  for (const [i, size] of sizes.entries()) {
    const file = `E1-${i}.ts.enc`;
    const data = randomBytes(size);
    writeFileSync(join(evidenceDir, file), data);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const entry = await journal.append('segment', {
      event: 'E1',
      segment: i,
      ...body,
      evidence: { file, bytes: size, sha256 },
    });
    entries.set(file, entry);
    items.push({ file, sha256, bytes: size, seq: entry.seq, sealedAt: entry.time });
  }
  return { items, entries };
}
