/**
 * Receives uploads (DESIGN.md "Uploads"), independent of the transport: the broker hands it offers,
 * chunks and done messages from authenticated devices; it answers with states and receipts.
 *
 * Partial data never enters the store: chunks go to a file under `incoming/`, and only a complete
 * file whose size and SHA-256 match the device-signed journal entry is moved into the write-once
 * store and receipted. A restart resumes from what the incoming file holds.
 *
 * Device keys: at the station the key comes from the device's TLS certificate (`deviceKey`). At
 * the center the station relays the device's certificate in the offer and the journal batch, and
 * it must chain to a unit CA the center trusts (`trustedCas`). Either way the key (and the
 * certificate) is remembered in the store the first time, so `recorder evidence verify` can check
 * the device's chain later, and a device that turns up with another key is refused.
 *
 * Center role (issue 6 item 4): each complete item is decrypted with the center key, streaming,
 * and its plaintext SHA-256 and size compared with the device-signed entry before it is stored
 * (still encrypted); the check is recorded in the index. A mismatch stores nothing.
 */
import { EventEmitter } from 'node:events';
import { createHash, createPublicKey, type Hash, type KeyObject, type X509Certificate } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { RecorderError, isRecorderError } from '../protocol/errors.ts';
import { EVIDENCE_TAG_BYTES, EvidenceDecipher, parseEvidenceHeader } from '../protocol/evidence-format.ts';
import { entryLine, verifyEntrySignature, type JournalEntry } from '../protocol/journal-entry.ts';
import { ChainVerifier } from '../protocol/journal-chain.ts';
import {
  EVIDENCE_DAMAGED_KIND,
  EVIDENCE_ORPHAN_KIND,
  EVIDENCE_UNFINISHED_KIND,
  entryHash,
  parseDone,
  sealedBy,
  sealsEvidence,
  parseJournalBatch,
  parseOffer,
  signReceipt,
  type JournalState,
  type Offer,
  type Receipt,
  type UploadState,
} from '../protocol/upload.ts';
import { checkDeviceCertificate } from './device-certificate.ts';
import { indexColumnsOf, type EvidenceStore, type StoredItem } from './evidence-store.ts';

export interface UploadReceiverOptions {
  store: EvidenceStore;
  unit: string;
  /** the name receipts give as holder, e.g. the station's gateway id */
  holder: string;
  role: 'station' | 'center';
  /** the gateway's Ed25519 receipt-signing key */
  receiptKey: KeyObject;
  /** the evidence-signing key bound to a device's certificate, or null when unknown */
  deviceKey: (device: string) => KeyObject | null;
  /** station: the device's TLS certificate (PEM), kept with its key so the relay can send it on */
  deviceCertificate?: (device: string) => string | null;
  /**
   * center admitting several units: a relayed device's id must begin with its unit's name and '-'
   * (HN-ZZ-0001), so that ids of different units never meet in the store, which keys a device by
   * its id (DEVICE_ID_NOT_OF_UNIT otherwise)
   */
  deviceIdsNameUnit?: boolean;
  /** center: the unit CAs a relayed device certificate must chain to */
  trustedCas?: readonly X509Certificate[];
  /** center role, required there: the RSA private key that decrypts the content keys */
  centerKey?: KeyObject;
  /** largest item accepted. Default 4 GiB. */
  maxItemBytes?: number;
  /**
   * While an item travels, its incoming file is datasync'd every this many bytes, alongside the
   * writes: the disk writes back during the transfer instead of all at once at done, where the
   * device would wait for it. Default 32 MiB.
   */
  syncEveryBytes?: number;
  /**
   * Opens an incoming file for appending. Default fs/promises open(path, 'a'); a test passes one
   * whose writes or datasyncs fail, as a failing disk's do.
   */
  openIncoming?: (path: string) => Promise<FileHandle>;
  now?: () => Date;
}

export interface UploadAlert {
  code: string;
  device: string;
  id: string | null;
  message: string;
}

export interface ReceiverReply {
  state?: UploadState;
  receipt?: Receipt;
}

/**
 * One item in travel. It keeps what done needs of the offer, not the offer: the index row to store
 * (with the signed entry line, verbatim) and, at a center, what the plaintext must be.
 */
interface Session {
  device: string;
  item: Omit<StoredItem, 'storedAt' | 'receipt'>;
  /**
   * center: the plaintext size and SHA-256 the device-signed entry gives, or null when it gives
   * none (an orphan: the file is only checked to decrypt, and its plaintext's hash recorded)
   */
  plain: { bytes: number; sha256: string } | null;
  /** when a message of the item was last handled (a running count): the oldest is dropped first */
  active: number;
  /** the unit on whose topics it was offered: chunks and done come on those only (a center) */
  unit: string;
  path: string;
  /** bytes in the incoming file */
  size: number;
  /**
   * SHA-256 of the first `hashed` bytes of the item, updated as each chunk is accepted (while its
   * bytes are still in the CPU's cache, just joined out of their TLS records), so done need not
   * read the file again; a resumed file's prefix is hashed once, at the offer. It covers the
   * file's `size` bytes once the queued writes are done, unless one failed.
   */
  hash: Hash;
  hashed: number;
  /** bytes written since the last datasync started */
  unsynced: number;
  /** the datasync in progress, if any (its failure fails the session like a write) */
  syncing: Promise<void> | null;
  /** bytes acknowledged: in the file or queued to be written, in order */
  accepted: number;
  /** the incoming file, open for appending while the item travels */
  handle: FileHandle | null;
  /** chunks accepted and not yet handed to a write, in order */
  pending: Buffer[];
  /** the writes of the queued chunks, until none is left; done and a new offer wait for it */
  writing: Promise<void>;
  /** bytes queued and not yet written */
  queued: number;
  /**
   * a write or datasync failed: later chunks are dropped and done reports it. `restart`: nothing
   * of the file is trusted, it was deleted at the failure (spoil()), and the item starts again from
   * 0; else (a disk full on a write) the file was cut back to a clean prefix and is resumed.
   */
  failed: { code: string; reason: string; restart: boolean } | null;
}

/**
 * Chunks are acknowledged once queued for writing, in order; beyond this many queued bytes per item
 * the acknowledgement waits for the write, so a slow disk paces the device. The broker reads a
 * client's next packet only after the previous one is handled (aedes), so waiting for every
 * write would make each chunk a disk round trip. An acknowledged chunk that never reaches the
 * disk (a crash) is simply resent: the resume point is always the incoming file's real size.
 */
const QUEUED_BYTES_HIGH = 4 * 1024 * 1024;

/**
 * Items in travel a device may hold sessions for. A device sends `itemsInFlight` items at a time
 * (default 2), so it needs a few; an offer beyond this many drops the device's least recently
 * active session: its file is closed and stays in incoming/, and a re-offer of that item resumes
 * from it. A session holds the item's signed entry line (up to a few hundred KiB) and its hash
 * state; with no bound, offers never followed by their bytes each held theirs until the gateway
 * stopped (1,500 of them took the heap to 370 MiB in a review probe).
 */
export const MAX_SESSIONS_PER_DEVICE = 16;

/**
 * Events: 'stored' (StoredItem), 'journal' {device, seq} (lines appended up to seq), 'alert'
 * (UploadAlert), 'rejected' {device, id, code, message}.
 */
export class UploadReceiver extends EventEmitter {
  /** by device, then item id */
  private readonly sessions = new Map<string, Map<string, Session>>();
  /**
   * Sessions dropped by makeRoom until they are settled (their writes and datasync may still be on
   * their way), by key(device, id): a re-offer queued before the settle takes over from one (it
   * may yet fail, and its file must not then be resumed from), and close() waits for them.
   */
  private readonly dropped = new Map<string, Session>();
  private activity = 0;
  /** per device and item, messages are handled one at a time, in arrival order */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly now: () => Date;
  private readonly maxBytes: number;
  /** center: the unit each device's certificate names (R9: indexed by unit) */
  private readonly unitOf = new Map<string, string>();

  constructor(private readonly options: UploadReceiverOptions) {
    super();
    this.now = options.now ?? (() => new Date());
    this.maxBytes = options.maxItemBytes ?? 4 * 1024 ** 3;
    if (options.role === 'center' && !options.centerKey) {
      throw new RecorderError(
        'GATEWAY_CONFIG_INVALID',
        'a gateway in the center role needs evidence.centerKey to check each segment at ingest',
      );
    }
  }

  /**
   * The device's evidence key: from its TLS certificate (station), else from a relayed
   * certificate that chains to a trusted unit CA (center), else as first seen. Remembered in the
   * store; another key than the one first seen is refused.
   */
  private deviceIdentity(
    device: string,
    certPem: string | undefined,
    unit: string,
  ): { key: KeyObject; unit: string } {
    const trusted = this.options.trustedCas;
    // A center admits several units' stations; each relays the devices of its own unit only.
    const ofUnit = (pem: string) => {
      const checked = checkDeviceCertificate(pem, device, trusted!);
      if (checked.unit !== unit) {
        throw new RecorderError(
          'UPLOAD_FORGED',
          `the certificate of ${device} is of unit ${checked.unit ?? 'none'}, relayed by a station of unit ${unit}`,
        );
      }
      if (this.options.deviceIdsNameUnit && !device.startsWith(`${unit}-`)) {
        throw new RecorderError(
          'DEVICE_ID_NOT_OF_UNIT',
          `device ${device} of unit ${unit}: this center serves several units, and a device id must begin with ${unit}-`,
        );
      }
      return checked.key;
    };
    let key = this.options.deviceKey(device);
    let cert = key ? (this.options.deviceCertificate?.(device) ?? null) : null;
    if (!key && certPem && trusted) {
      key = ofUnit(certPem);
      cert = certPem;
    }
    const known = this.options.store.knownDevice(device);
    if (!key) {
      if (!known) throw new RecorderError('UPLOAD_FORGED', `no evidence key is known for ${device}`);
      // Sent without a certificate: the one remembered must be of this unit too.
      if (trusted && known.certPem) ofUnit(known.certPem);
      return { key: createPublicKey(known.publicKeyPem), unit };
    }
    const pem = key.export({ type: 'spki', format: 'pem' }) as string;
    const held = this.options.store.rememberDevice(device, pem, cert, this.now().toISOString());
    if (held.publicKeyPem !== pem) {
      throw new RecorderError(
        'STORE_DEVICE_KEY_CHANGED',
        `${device} presents another evidence key than the one first seen on ${held.firstSeen}`,
      );
    }
    return { key, unit };
  }

  private serial<T>(device: string, id: unknown, task: () => Promise<T>): Promise<T> {
    const k = key(device, typeof id === 'string' ? id : '');
    const run = (this.queues.get(k) ?? Promise.resolve()).then(task);
    const tail = run.catch(() => undefined);
    this.queues.set(k, tail);
    void tail.then(() => {
      if (this.queues.get(k) === tail) this.queues.delete(k);
    });
    return run;
  }

  /**
   * An offer from `device` (as authenticated by its certificate), on the topics of `unit` (a
   * center's relaying station's unit; default this gateway's).
   */
  offer(device: string, payload: unknown, unit = this.options.unit): Promise<ReceiverReply> {
    return this.serial(device, (payload as { id?: unknown })?.id, () =>
      this.handleOffer(device, payload, unit),
    );
  }

  /**
   * A chunk at `offset`. Returns null when it was appended (or was a duplicate of bytes held), or
   * a state telling the device where to resume. `unit` as for offer(): an item offered on one
   * unit's topics takes chunks and done on those only.
   */
  chunk(
    device: string,
    id: string,
    offset: number,
    data: Buffer,
    unit = this.options.unit,
  ): Promise<UploadState | null> {
    return this.serial(device, id, () => this.handleChunk(device, id, offset, data, unit));
  }

  /** The device says it sent everything: check, store, receipt. `unit` as for chunk(). */
  done(device: string, payload: unknown, unit = this.options.unit): Promise<ReceiverReply> {
    return this.serial(device, (payload as { id?: unknown })?.id, () =>
      this.handleDone(device, payload, unit),
    );
  }

  /**
   * A batch of the device's journal lines. They must continue the chain the station holds for that
   * device, signed by its key; a gap, fork or forgery is refused and alerted, and nothing of the
   * batch is kept. `unit` as for offer().
   */
  journal(device: string, payload: unknown, unit = this.options.unit): Promise<JournalState> {
    return this.serial(device, '\u0000journal', async () => {
      // A refusal before the sender is known to speak for the device tells nothing of its chain,
      // not even the head: at a center, another unit's station could otherwise probe it.
      let batch;
      try {
        batch = parseJournalBatch(payload);
      } catch (error) {
        return { status: 'refused', head: null, code: (error as RecorderError).code };
      }
      const head = this.options.store.journalHead(device);
      const nextSeq = head ? head.seq + 1 : 0;
      // With no head and a batch out of place there is nothing to tell and nothing to check.
      if (!head && batch.from !== nextSeq) return { status: 'ok', head };
      let publicKey: KeyObject;
      try {
        publicKey = this.deviceIdentity(device, batch.deviceCert, unit).key;
      } catch (error) {
        const e = error as RecorderError;
        this.alert({ code: e.code, device, id: null, message: e.message });
        return { status: 'refused', head: null, code: e.code, reason: e.detail };
      }
      if (batch.from !== nextSeq) return this.journalHeld(device, head); // the device resends from head + 1
      const verifier = new ChainVerifier({
        publicKey,
        device,
        ...(head ? { continueFrom: { nextSeq, prev: head.hash } } : {}),
      });
      const rows = batch.lines.map((line, i) => {
        const bytes = Buffer.from(line, 'utf8');
        verifier.push(bytes);
        return { seq: batch.from + i, hash: createHash('sha256').update(bytes).digest('hex'), line };
      });
      const report = verifier.finish();
      if (!report.ok) {
        const first = report.problems[0]!;
        const message = `journal of ${device} from seq ${batch.from}: line ${first.line} ${first.code} ${first.message}`;
        this.alert({ code: first.code, device, id: null, message });
        return { status: 'refused', head, code: first.code, reason: message };
      }
      this.options.store.appendJournal(device, rows);
      for (const row of rows) this.noticeDamage(device, row.line);
      this.emit('journal', { device, seq: rows.at(-1)!.seq });
      return this.journalHeld(device, { seq: rows.at(-1)!.seq, hash: rows.at(-1)!.hash });
    });
  }

  /**
   * A journal line in which the device says it holds evidence it could not keep whole is alerted
   * (DEVICE_EVIDENCE_DAMAGED: the fleet's evidence-damaged): the journal reaches the station
   * whether or not anyone watched the device's events when it happened.
   */
  private noticeDamage(device: string, line: string): void {
    if (!line.includes('"kind":"evidence-')) return;
    let entry: JournalEntry;
    try {
      entry = JSON.parse(line) as JournalEntry;
    } catch {
      return;
    }
    if (entry.kind !== EVIDENCE_UNFINISHED_KIND && entry.kind !== EVIDENCE_DAMAGED_KIND) return;
    const file = (entry.body as { file?: unknown }).file;
    const name = typeof file === 'string' ? file : '(unnamed)';
    this.alert({
      code: 'DEVICE_EVIDENCE_DAMAGED',
      device,
      id: typeof file === 'string' ? file : null,
      message:
        entry.kind === EVIDENCE_UNFINISHED_KIND
          ? `${device} keeps ${name} as found, an unfinished seal after a power cut (journal seq ${entry.seq}): ` +
            'it cannot be uploaded; collect the recorder'
          : `${device}'s copy of ${name} no longer hashes to its sealing entry (journal seq ${entry.seq}): ` +
            'damaged on the recorder',
    });
  }

  /** The answer to a journal batch taken or already held: the head, and a receipt for the chain up to it. */
  private journalHeld(device: string, head: JournalState['head']): JournalState {
    if (!head) return { status: 'ok', head };
    const receipt = signReceipt(
      {
        v: 1,
        kind: 'journal',
        device,
        seq: head.seq,
        hash: head.hash,
        holder: this.options.holder,
        role: this.options.role,
        at: this.now().toISOString(),
      },
      this.options.receiptKey,
    );
    return { status: 'ok', head, receipt };
  }

  private async handleOffer(device: string, payload: unknown, unit: string): Promise<ReceiverReply> {
    let offer: Offer;
    try {
      offer = parseOffer(payload);
    } catch (error) {
      return this.refuse(device, null, error as RecorderError);
    }
    const problem = this.offerProblem(device, offer, unit);
    if (problem) {
      this.alert({ code: problem.code, device, id: offer.id, message: problem.detail });
      return this.refuse(device, offer.id, problem);
    }
    const stored = this.options.store.get(device, offer.id);
    if (stored)
      return {
        state: { id: offer.id, status: 'have', offset: stored.bytes },
        receipt: this.receiptFor(stored),
      };

    const previous = this.sessions.get(device)?.get(offer.id) ?? this.dropped.get(key(device, offer.id));
    this.dropped.delete(key(device, offer.id));
    if (previous) await this.settle(previous);
    if (previous?.failed?.restart) await this.restart(previous);
    const path = this.options.store.incomingPath(device, offer.id);
    let size = await stat(path).then(
      (s) => s.size,
      () => 0,
    );
    if (size > offer.bytes) {
      await truncate(path, 0);
      size = 0;
    }
    if (size === 0) await (await open(path, 'a')).close(); // even an empty item has a file
    // A re-offer after a cut connection goes on with the hash of the bytes this process accepted,
    // if they are all in the file; only a file this process has not written (a restart, a session
    // dropped) or whose write failed is read again.
    const hash = previous?.hashed === size && size > 0 ? previous.hash : await hashPrefix(path, size);
    this.makeRoom(device, offer.id);
    this.sessionsOf(device).set(offer.id, {
      device,
      item: this.itemFor(device, offer),
      plain: sealedBy(offer.entry as JournalEntry)?.plain ?? null,
      active: ++this.activity,
      unit,
      path,
      size,
      hash,
      hashed: size,
      unsynced: 0,
      syncing: null,
      accepted: size,
      handle: null,
      pending: [],
      writing: Promise.resolve(),
      queued: 0,
      failed: null,
    });
    return { state: { id: offer.id, status: 'send', offset: size } };
  }

  private async handleChunk(
    device: string,
    id: string,
    offset: number,
    data: Buffer,
    unit: string,
  ): Promise<UploadState | null> {
    const session = this.session(device, id, unit);
    if (!session) return { id, status: 'refused', offset: 0, code: 'UPLOAD_NO_OFFER', reason: 'offer first' };
    if (session.failed)
      return {
        id,
        status: 'refused',
        offset: session.failed.restart ? 0 : session.size,
        code: session.failed.code,
        reason: session.failed.reason,
      };
    session.active = ++this.activity;
    if (offset + data.length <= session.accepted) return null; // a QoS 1 resend of bytes already held
    if (offset !== session.accepted || offset + data.length > session.item.bytes) {
      return { id, status: 'send', offset: session.accepted };
    }
    session.accepted += data.length;
    session.hash.update(data);
    session.hashed += data.length;
    session.queued += data.length;
    // The first chunk after a batch was taken starts a drain behind the one running (if any):
    // that one takes this chunk when its write returns, and this one then finds nothing to do.
    if (session.pending.push(data) === 1)
      session.writing = session.writing.then(() => this.drain(session, device, id));
    if (session.queued > QUEUED_BYTES_HIGH) await session.writing;
    return null;
  }

  /**
   * Writes the queued chunks until none is left: the chunks that arrive while one write is on
   * the threadpool go out together in the next, one round trip for several chunks.
   */
  private async drain(session: Session, device: string, id: string): Promise<void> {
    while (session.pending.length > 0) await this.append(session, device, id, session.pending.splice(0));
  }

  /** Appends chunks to the incoming file; on failure the file is cut back to a clean prefix. */
  private async append(session: Session, device: string, id: string, chunks: Buffer[]): Promise<void> {
    const bytes = chunks.reduce((n, chunk) => n + chunk.length, 0);
    try {
      if (session.failed) return;
      const handle = (session.handle ??= await (this.options.openIncoming ?? appendTo)(session.path));
      // A regular file may take fewer bytes than asked (a disk filling up): write the rest.
      let rest = chunks;
      for (let done = 0; done < bytes;) {
        const { bytesWritten } = await handle.writev(rest);
        if (bytesWritten === 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        done += bytesWritten;
        rest = unwritten(rest, bytesWritten);
      }
      session.size += bytes;
      session.unsynced += bytes;
      if (session.unsynced >= (this.options.syncEveryBytes ?? 32 * 1024 * 1024) && !session.syncing) {
        session.unsynced = 0;
        session.syncing = handle.datasync().then(
          () => {
            session.syncing = null;
          },
          // Cleared only once the file is deleted: settle() waits for it before a re-offer looks.
          async (error: Error) => {
            await this.spoil(session, device, id, syncFailureCode(error), `datasync: ${error.message}`);
            session.syncing = null;
          },
        );
      }
    } catch (error) {
      const reason = `write: ${(error as Error).message}`;
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') {
        await this.spoil(session, device, id, 'UPLOAD_WRITE_FAILED', reason);
        return;
      }
      // A disk full: whatever part of the chunk landed is cut off again, so the file stays a clean
      // prefix, resumed once there is room (no datasync failed, the bytes before are as written).
      const cut = await truncate(session.path, session.size).then(
        () => true,
        () => false,
      );
      if (!cut) {
        await this.spoil(session, device, id, 'STORAGE_FULL', `${reason}; the file could not be cut back`);
        return;
      }
      this.alert({ code: 'STORAGE_FULL', device, id, message: `cannot write ${session.path}: ${reason}` });
      session.failed = { code: 'STORAGE_FULL', reason: (error as Error).message, restart: false };
      session.accepted = session.size;
    } finally {
      session.queued -= bytes;
    }
  }

  /**
   * A write (other than a disk full) or a datasync of the item's file failed: the alert is raised,
   * the file deleted, and the item starts again from 0 in a fresh file with a fresh hash (done or a
   * re-offer resets the session, restart()). After a failed fsync Linux reports the error once
   * and marks the pages clean: a second fsync "succeeds" though the bytes may never reach the
   * disk, while they still read back right from the page cache, so neither the running hash nor a
   * re-read would tell (PostgreSQL's "fsyncgate", 2018). Deleted now, so that neither a re-offer
   * nor a gateway restarted on this store resumes from the file.
   */
  private async spoil(
    session: Session,
    device: string,
    id: string,
    code: string,
    reason: string,
  ): Promise<void> {
    if (session.failed?.restart) return;
    session.failed = { code, reason, restart: true };
    this.alert({
      code,
      device,
      id,
      message: `${session.path}: ${reason}; the incoming file is dropped and the item is to be sent again from 0`,
    });
    await unlink(session.path).catch(() => undefined);
  }

  /** After spoil(): the session starts again from 0, its file gone (deleted again if it came back). */
  private async restart(session: Session): Promise<void> {
    await unlink(session.path).catch(() => undefined);
    session.failed = null;
    session.size = 0;
    session.accepted = 0;
    session.hash = createHash('sha256');
    session.hashed = 0;
    session.unsynced = 0;
  }

  /**
   * Waits for an item's queued writes and closes its incoming file (the session stays); with
   * `durable`, the file's data is on disk first (a failed fsync spoils the file).
   */
  private async settle(session: Session, durable = false): Promise<void> {
    await session.writing;
    await session.syncing;
    const handle = session.handle;
    session.handle = null;
    if (handle && durable && !session.failed) {
      await handle
        .datasync()
        .catch((error: Error) =>
          this.spoil(
            session,
            session.device,
            session.item.id,
            syncFailureCode(error),
            `fsync: ${error.message}`,
          ),
        );
    }
    await handle?.close().catch(() => undefined);
  }

  /**
   * Waits for every queued chunk write and closes the incoming files. Call before closing the
   * store: a receiver started again on the same store resumes from what the files hold.
   */
  async close(): Promise<void> {
    await Promise.all([...this.allSessions(), ...this.dropped.values()].map((s) => this.settle(s)));
    this.sessions.clear();
    this.dropped.clear();
  }

  /**
   * A device (`device`) or a relaying station (`unit`, at a center) went away: the incoming files of
   * its items in travel are closed. The sessions stay, with their hash state; a re-offer resumes,
   * and a chunk reopens the file. Without this, an item never offered again held a file
   * descriptor until the gateway stopped.
   */
  async release(match: { device: string } | { unit: string }): Promise<number> {
    const gone = this.allSessions().filter((s) =>
      'device' in match ? s.device === match.device : s.unit === match.unit,
    );
    await Promise.all(gone.map((s) => this.serial(s.device, s.item.id, () => this.settle(s))));
    return gone.length;
  }

  /** How many items in travel the receiver holds a session for (MAX_SESSIONS_PER_DEVICE each). */
  sessionCount(device?: string): number {
    return device === undefined ? this.allSessions().length : (this.sessions.get(device)?.size ?? 0);
  }

  private allSessions(): Session[] {
    return [...this.sessions.values()].flatMap((held) => [...held.values()]);
  }

  private sessionsOf(device: string): Map<string, Session> {
    let held = this.sessions.get(device);
    if (!held) this.sessions.set(device, (held = new Map()));
    return held;
  }

  private dropSession(device: string, id: string): void {
    const held = this.sessions.get(device);
    held?.delete(id);
    if (held?.size === 0) this.sessions.delete(device);
  }

  /**
   * Before `device`'s session for `id` is made: beyond MAX_SESSIONS_PER_DEVICE, its least recently
   * active other session is dropped and its file closed, in that item's turn (not awaited: two
   * offers dropping each other's session must not wait for each other). The file stays; a
   * re-offer resumes from it.
   */
  private makeRoom(device: string, id: string): void {
    const held = this.sessions.get(device);
    if (!held || held.has(id) || held.size < MAX_SESSIONS_PER_DEVICE) return;
    let oldest: Session | null = null;
    for (const s of held.values()) if (!oldest || s.active < oldest.active) oldest = s;
    const k = key(device, oldest!.item.id);
    this.dropSession(device, oldest!.item.id);
    this.dropped.set(k, oldest!);
    void this.serial(device, oldest!.item.id, async () => {
      await this.settle(oldest!);
      if (this.dropped.get(k) !== oldest) return; // a re-offer queued before this took it over
      this.dropped.delete(k);
      // A write or datasync that failed meanwhile: its file is not resumed from (spoil()).
      if (oldest!.failed?.restart) await this.restart(oldest!);
    });
  }

  /** The item's session, if it was offered on `unit`'s topics. */
  private session(device: string, id: string, unit: string): Session | null {
    const session = this.sessions.get(device)?.get(id);
    return session?.unit === unit ? session : null;
  }

  private async handleDone(device: string, payload: unknown, unit: string): Promise<ReceiverReply> {
    let done;
    try {
      done = parseDone(payload);
    } catch (error) {
      return this.refuse(device, null, error as RecorderError);
    }
    const session = this.session(device, done.id, unit);
    if (!session) {
      // The original receipt, to the unit the item is indexed under only.
      const stored = this.options.store.get(device, done.id);
      if (stored?.unit === unit)
        return {
          state: { id: done.id, status: 'have', offset: stored.bytes },
          receipt: this.receiptFor(stored),
        };
      return {
        state: { id: done.id, status: 'refused', offset: 0, code: 'UPLOAD_NO_OFFER', reason: 'offer first' },
      };
    }
    session.active = ++this.activity;
    const { item } = session;
    await this.settle(session, true);
    if (session.failed) {
      const { code, reason, restart } = session.failed;
      if (restart) await this.restart(session);
      session.failed = null;
      return { state: { id: item.id, status: 'refused', offset: session.size, code, reason } };
    }
    if (session.size < item.bytes) {
      session.accepted = session.size;
      return { state: { id: item.id, status: 'send', offset: session.size } };
    }
    // The hash runs ahead of the file only after a failed write: the done that reported it was
    // refused, and a device that sends on without offering again gets its file read once more here.
    const hash =
      session.hashed === session.size ? session.hash : await hashPrefix(session.path, session.size);
    const sha256 = hash.copy().digest('hex');
    const onDisk = await stat(session.path).then(
      (s) => s.size,
      () => -1,
    );
    if (session.size !== item.bytes || onDisk !== item.bytes || sha256 !== item.sha256) {
      // Corrupted on the way (or the file changed under us): drop the bytes and have them sent again.
      await unlink(session.path).catch(() => undefined);
      session.size = 0;
      session.accepted = 0;
      session.hash = createHash('sha256');
      session.hashed = 0;
      this.alert({
        code: 'UPLOAD_HASH_MISMATCH',
        device,
        id: item.id,
        message: 'received bytes do not match the signed hash; resending',
      });
      return {
        state: {
          id: item.id,
          status: 'send',
          offset: 0,
          code: 'UPLOAD_HASH_MISMATCH',
          reason: 'hash mismatch',
        },
      };
    }
    let ingest: { checkedAt: string; plainSha256: string } | undefined;
    if (this.options.role === 'center') {
      const checked = await this.checkPlaintext(session.path, item, session.plain);
      if (checked instanceof RecorderError) {
        const problem = checked;
        // Nothing is stored: the station keeps its copy and its relay reports the refusal.
        await unlink(session.path).catch(() => undefined);
        this.dropSession(device, item.id);
        this.alert({ code: problem.code, device, id: item.id, message: problem.message });
        return {
          state: { id: item.id, status: 'refused', offset: 0, code: problem.code, reason: problem.detail },
        };
      }
      ingest = {
        checkedAt: this.now().toISOString(),
        plainSha256: checked.sha256,
      };
    }
    let stored: StoredItem;
    try {
      stored = await this.options.store.put(session.path, item, this.now().toISOString(), ingest);
    } catch (error) {
      const code = isRecorderError(error)
        ? error.code
        : (error as NodeJS.ErrnoException).code === 'ENOSPC'
          ? 'STORAGE_FULL'
          : 'STORE_FAILED';
      this.alert({ code, device, id: item.id, message: (error as Error).message });
      // The store's fsync, rename or INSERT failed: the file is not trusted again (spoil()); only
      // a refusal of the store's own (STORE_CONFLICT) leaves it as it is.
      if (!isRecorderError(error)) await this.restart(session);
      return {
        state: {
          id: item.id,
          status: 'refused',
          offset: session.size,
          code,
          reason: (error as Error).message,
        },
      };
    }
    this.dropSession(device, item.id);
    const receipt = this.receiptFor(stored);
    this.emit('stored', stored);
    return { state: { id: item.id, status: 'have', offset: stored.bytes }, receipt };
  }

  /**
   * Center: decrypts the received file with the center key, streaming (1 MiB at a time, so a
   * 1 GiB segment costs 1 MiB; AES-GCM's tag proves it whole), and compares the plaintext with the
   * device-signed entry's `bytes` and `sha256` (`body`; an orphan's entry gives none). Returns the
   * problem, or the plaintext's size and SHA-256.
   */
  private async checkPlaintext(
    path: string,
    item: Session['item'],
    body: { bytes: number; sha256: string } | null,
  ): Promise<RecorderError | { bytes: number; sha256: string }> {
    const file = `${item.device}/${item.id}`;
    const handle = await open(path, 'r');
    try {
      const size = (await handle.stat()).size;
      const head = Buffer.alloc(Math.min(size, 12 + 0xffff + 12));
      await handle.read(head, 0, head.length, 0);
      const header = parseEvidenceHeader(head, file);
      const end = size - EVIDENCE_TAG_BYTES;
      if (end < header.bytes.length)
        return new RecorderError('EVIDENCE_BAD_FORMAT', `${file} is shorter than header and tag`);
      const tag = Buffer.alloc(EVIDENCE_TAG_BYTES);
      await handle.read(tag, 0, EVIDENCE_TAG_BYTES, end);
      const decipher = new EvidenceDecipher(header, tag, this.options.centerKey!, file);
      const chunk = Buffer.alloc(1 << 20);
      for (let pos = header.bytes.length; pos < end;) {
        const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, end - pos), pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        decipher.update(chunk.subarray(0, bytesRead));
      }
      const plain = decipher.final();
      if (!body && item.kind !== EVIDENCE_ORPHAN_KIND) {
        return new RecorderError(
          'EVIDENCE_PLAINTEXT_MISMATCH',
          `${file} decrypts to ${plain.bytes} bytes with SHA-256 ${plain.sha256}; its signed entry names no plaintext`,
        );
      }
      if (body && (plain.sha256 !== body.sha256 || plain.bytes !== body.bytes)) {
        return new RecorderError(
          'EVIDENCE_PLAINTEXT_MISMATCH',
          `${file} decrypts to ${plain.bytes} bytes with SHA-256 ${plain.sha256}, its signed entry says ${String(body.bytes)} bytes ${String(body.sha256)}`,
        );
      }
      return { bytes: plain.bytes, sha256: plain.sha256 };
    } catch (error) {
      if (isRecorderError(error)) return error;
      return new RecorderError('EVIDENCE_DECRYPT_FAILED', `${file}: ${(error as Error).message}`);
    } finally {
      await handle.close();
    }
  }

  private offerProblem(device: string, offer: Offer, unit: string): RecorderError | null {
    const entry = offer.entry as JournalEntry;
    if (entry.device !== device) {
      return new RecorderError(
        'UPLOAD_FORGED',
        `the entry names device ${entry.device}, the connection is ${device}`,
      );
    }
    let publicKey: KeyObject;
    try {
      const identity = this.deviceIdentity(device, offer.deviceCert, unit);
      publicKey = identity.key;
      this.unitOf.set(device, identity.unit);
    } catch (error) {
      if (isRecorderError(error)) return error;
      throw error;
    }
    if (!verifyEntrySignature(entry, publicKey)) {
      return new RecorderError(
        'UPLOAD_FORGED',
        `the journal entry of ${offer.id} is not signed by ${device}'s evidence key`,
      );
    }
    const held = this.options.store.journalHash(device, entry.seq);
    if (held !== null && held !== entryHash(entry)) {
      return new RecorderError(
        'UPLOAD_FORGED',
        `entry ${entry.seq} differs from the journal line the station holds`,
      );
    }
    if (!sealsEvidence(entry.kind))
      return new RecorderError('UPLOAD_BAD_MESSAGE', `a ${entry.kind} entry seals no evidence`);
    const sealed = sealedBy(entry);
    if (
      !sealed ||
      sealed.file !== offer.id ||
      sealed.bytes !== offer.bytes ||
      sealed.sha256 !== offer.sha256
    ) {
      return new RecorderError(
        'UPLOAD_FORGED',
        `the offer of ${offer.id} does not match the file its signed entry names`,
      );
    }
    if (offer.bytes > this.maxBytes)
      return new RecorderError('UPLOAD_TOO_LARGE', `${offer.bytes} bytes is over ${this.maxBytes}`);
    return null;
  }

  private itemFor(device: string, offer: Offer): Omit<StoredItem, 'storedAt' | 'receipt'> {
    const entry = offer.entry as JournalEntry;
    const unit = this.unitOf.get(device) ?? this.options.unit;
    return {
      id: offer.id,
      unit,
      device,
      ...indexColumnsOf(entry),
      entrySeq: entry.seq,
      entryHash: entryHash(entry),
      entryLine: entryLine(entry),
      bytes: offer.bytes,
      sha256: offer.sha256,
    };
  }

  private receiptFor(item: StoredItem): Receipt {
    if (item.receipt) return JSON.parse(item.receipt) as Receipt;
    const receipt = signReceipt(
      {
        v: 1,
        id: item.id,
        device: item.device,
        entrySeq: item.entrySeq,
        entryHash: item.entryHash,
        bytes: item.bytes,
        sha256: item.sha256,
        holder: this.options.holder,
        role: this.options.role,
        storedAt: item.storedAt,
      },
      this.options.receiptKey,
    );
    // The first receipt is kept, so a re-offer gets the very same one.
    this.options.store.setReceipt(item.device, item.id, JSON.stringify(receipt));
    return receipt;
  }

  private refuse(device: string, id: string | null, error: RecorderError): ReceiverReply {
    this.emit('rejected', { device, id, code: error.code, message: error.message });
    return {
      state: { id: id ?? 'unknown', status: 'refused', offset: 0, code: error.code, reason: error.detail },
    };
  }

  private alert(alert: UploadAlert): void {
    this.emit('alert', alert);
  }
}

function appendTo(path: string): Promise<FileHandle> {
  return open(path, 'a');
}

/** A datasync that failed for want of room says so (the station-storage alert either way). */
function syncFailureCode(error: Error): string {
  return (error as NodeJS.ErrnoException).code === 'ENOSPC' ? 'STORAGE_FULL' : 'UPLOAD_WRITE_FAILED';
}

function key(device: string, id: string): string {
  return `${device}\u0000${id}`;
}

/** A SHA-256 already fed with the first `size` bytes of the file (a resumed upload's prefix). */
async function hashPrefix(path: string, size: number): Promise<Hash> {
  const hash = createHash('sha256');
  if (size === 0) return hash;
  for await (const chunk of createReadStream(path, { end: size - 1 }) as AsyncIterable<Buffer>)
    hash.update(chunk);
  return hash;
}

/** What is left of `buffers` after the first `written` bytes. */
function unwritten(buffers: Buffer[], written: number): Buffer[] {
  let i = 0;
  while (i < buffers.length && written >= buffers[i]!.length) written -= buffers[i++]!.length;
  const rest = buffers.slice(i);
  if (written > 0) rest[0] = rest[0]!.subarray(written);
  return rest;
}
