/**
 * Uploads sealed evidence to the station (DESIGN.md "Uploads"), independent of the transport. The
 * exchange itself is protocol/upload-sender.ts (shared with the station's relay to its center);
 * this file decides what is pending, checks and journals receipts, and deletes.
 *
 * For each pending item, in upload order (marked events first, then oldest): offer the device-signed
 * journal entry with the ciphertext size and hash, send the bytes the gateway does not hold yet in
 * chunks with a window in flight, say done, and wait for the gateway's signed receipt. Only a
 * receipt for exactly this item (checkReceipt) is journaled, and only then is the local copy
 * deleted. Anything else — a timeout, a refusal, a cut connection — leaves the item where it was.
 * An item the gateway finds not to match its hash even after a full resend is given up for the
 * round (UPLOAD_HASH_MISMATCH, or EVIDENCE_MISMATCH when the local copy itself does not hash to its
 * journal entry) so the others go; it stays pending and the next round offers it again.
 *
 * A receipt that fails the check (not signed by the pinned gateway key, or naming other content) is
 * journaled as `receipt-refused` (R18: an auditor sees that a gateway answered with a receipt the
 * device would not act on), once per item and receipt, and the item stays pending. A receipt that
 * names another item id never reaches the check: it is a stray reply (a duplicate answer to an
 * earlier offer) and the attempt simply waits for its own receipt.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { RecorderError, isRecorderError } from '../protocol/errors.ts';
import type { JournalEntry, JournalHead, JsonObject } from '../protocol/journal-entry.ts';
import { canonicalize } from '../protocol/canonical-json.ts';
import {
  EVIDENCE_DAMAGED_KIND,
  UPLOAD_RECEIPT_KIND,
  journaledReceipt,
  checkReceipt,
  uploadOrder,
  type JournalState,
  type Offer,
  type Receipt,
  type UploadLink,
} from '../protocol/upload.ts';
import { UploadSender } from '../protocol/upload-sender.ts';
import { ReadAhead } from './read-ahead.ts';
import { hashFile } from './sealing/evidence-file.ts';

export interface PendingUpload {
  /** evidence file name (also the upload id) */
  file: string;
  sha256: string;
  bytes: number;
  /** journal seq of the entry that sealed it */
  seq: number;
  /** ISO time */
  sealedAt: string;
  /** the event it belongs to, when known */
  event?: string | null;
  /** its event has marks (uploaded first) */
  marked?: boolean;
}

export interface UploaderOptions {
  link: UploadLink;
  device: string;
  evidenceDir: string;
  /** the trusted gateway's receipt-signing public key */
  gatewayKey: KeyObject;
  /** items not receipted yet */
  pending: () => readonly PendingUpload[];
  /** the signed journal entry that sealed an item */
  entryFor: (item: PendingUpload) => Promise<JournalEntry>;
  /** journals the receipt; the journal file's lines up to its head are sent to the station */
  journal: UploaderJournal;
  /** removes an item from the pending queue once receipted and deleted */
  forget: (file: string) => Promise<unknown>;
  /** the journal file, sent whole so the station holds the device's whole chain */
  journalPath?: string;
  /** journal lines per message. Default 200. */
  journalBatchLines?: number;
  /** Default 256 KiB. */
  chunkBytes?: number;
  /** chunks in flight, per item. Default 8. */
  window?: number;
  /**
   * Items on their way at once. Default 2: the next item's offer and chunks go out while the
   * previous one waits for its done to be answered (the gateway's last datasync, store, receipt)
   * and is journaled and deleted. A real segment is 10 s, about 5 MB, and that per-item work
   * took as long as its bytes. Offers go out in upload order: an item offers only after the one
   * before it has offered (or given up).
   */
  itemsInFlight?: number;
  /** how long to wait for a state or receipt. Default 15 s. */
  replyTimeoutMs?: number;
  /** offers of one item before giving up for this round. Default 5. */
  maxAttempts?: number;
  /** progress callback: bytes of this item the gateway holds */
  onProgress?: (item: PendingUpload, sent: number) => void;
}

export interface UploadRoundResult {
  receipted: string[];
  failed: { file: string; code: string; message: string }[];
}

/** The device journal as the uploader uses it. */
export interface UploaderJournal {
  /** appends an entry; resolves once it is durable (fsync'd) */
  append(kind: string, body: JsonObject): Promise<JournalEntry>;
  /**
   * The head after the last durable line. Lines past it are written but not fsync'd yet: a power
   * cut could still take them, and a station holding one would then see the device's next entry at
   * that seq as a fork, forever. Without it, every complete line is taken as durable.
   */
  readonly head?: JournalHead;
}

export { EVIDENCE_DAMAGED_KIND };

/** Kind of the journal entry for a receipt the device checked and would not act on. */
export const RECEIPT_REFUSED_KIND = 'receipt-refused';

export class Uploader {
  private readonly sender: UploadSender;
  /** `file receiptHash` of refusals already journaled: a gateway repeating itself adds no lines */
  private readonly refused = new Set<string>();
  /** `file sha256` of local damage already journaled */
  private readonly damaged = new Set<string>();

  constructor(private readonly options: UploaderOptions) {
    this.sender = new UploadSender({
      link: options.link,
      timers: { setTimeout, clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout), now: Date.now },
      ...(options.chunkBytes ? { chunkBytes: options.chunkBytes } : {}),
      ...(options.window ? { window: options.window } : {}),
      ...(options.replyTimeoutMs ? { replyTimeoutMs: options.replyTimeoutMs } : {}),
    });
  }

  /**
   * Sends the journal lines the station does not hold yet, until its head is the device's. Returns
   * the station's head. Throws UPLOAD_REFUSED when the station finds a gap, fork or forgery.
   */
  async syncJournal(): Promise<JournalState['head']> {
    if (!this.options.journalPath) throw new RecorderError('UPLOAD_FAILED', 'no journal path configured');
    const text = await readFile(this.options.journalPath, 'utf8');
    // Only complete lines: a torn tail is not part of the chain until the writer moves it aside.
    // And only durable ones (line n holds seq n).
    const lines = text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .slice(0, -1)
      .slice(0, this.options.journal.head?.nextSeq);
    const state = await this.sender.syncJournal(lines, { batchLines: this.options.journalBatchLines ?? 200 });
    return state?.head ?? null;
  }

  /** One pass over everything pending, started in upload order; the result lists them in it too. */
  async uploadAll(): Promise<UploadRoundResult> {
    const items = uploadOrder(
      this.options.pending().map((item) => ({
        ...item,
        id: item.file,
        sealedAt: Date.parse(item.sealedAt),
        marked: item.marked ?? false,
        item,
      })),
    );
    const outcomes: (UploadRoundResult['failed'][number] | null)[] = [];
    let next = 0;
    // Resolves when the item taken last has offered: the next one waits for it, so the gateway
    // sees the offers in upload order even when one item's journal entry is found sooner.
    let turn: Promise<void> = Promise.resolve();
    const lane = async () => {
      while (next < items.length) {
        const i = next++;
        const { item } = items[i]!;
        const after = turn;
        let offered!: () => void;
        turn = new Promise((resolve) => (offered = resolve));
        try {
          await this.uploadOne(item, { after, offered });
          outcomes[i] = null;
        } catch (error) {
          outcomes[i] = {
            file: item.file,
            code: isRecorderError(error) ? error.code : 'UPLOAD_FAILED',
            message: (error as Error).message,
          };
        } finally {
          offered();
        }
      }
    };
    const lanes = Math.max(1, Math.min(this.options.itemsInFlight ?? 2, items.length));
    await Promise.all(Array.from({ length: lanes }, lane));
    const result: UploadRoundResult = { receipted: [], failed: [] };
    items.forEach(({ item }, i) => {
      const failure = outcomes[i];
      if (failure) result.failed.push(failure);
      else result.receipted.push(item.file);
    });
    return result;
  }

  /**
   * Uploads one item until a valid receipt is journaled and the local copy deleted. In a round,
   * `order` holds it back until the item before it has offered (`after`), and lets the next one go
   * once its own first offer is sent (`offered`).
   */
  async uploadOne(
    item: PendingUpload,
    order?: { after: Promise<void>; offered: () => void },
  ): Promise<Receipt> {
    await order?.after;
    const entry = await this.options.entryFor(item);
    const offer: Offer = { id: item.file, entry, bytes: item.bytes, sha256: item.sha256 };
    const attempts = this.options.maxAttempts ?? 5;
    let lastError: Error = new RecorderError('UPLOAD_TIMEOUT', `no answer for ${item.file}`);
    for (let attempt = 0; attempt < attempts; attempt++) {
      try {
        const receipt = await this.attempt(item, offer, order?.offered);
        try {
          checkReceipt(
            receipt,
            { id: item.file, device: this.options.device, entry, bytes: item.bytes, sha256: item.sha256 },
            this.options.gatewayKey,
          );
        } catch (error) {
          await this.journalRefusal(item, receipt, error as RecorderError);
          throw error;
        }
        // Journal first, delete second: a crash in between leaves a receipted file, never a lost one.
        await this.options.journal.append(UPLOAD_RECEIPT_KIND, journaledReceipt(item, receipt));
        await unlink(join(this.options.evidenceDir, item.file)).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        });
        await this.options.forget(item.file);
        return receipt;
      } catch (error) {
        lastError = error as Error;
        // A receipt that does not match is never retried into a deletion: stop here.
        if (isRecorderError(error, 'RECEIPT_INVALID') || isRecorderError(error, 'RECEIPT_MISMATCH'))
          throw error;
        if (isRecorderError(error, 'UPLOAD_REFUSED')) throw error;
        // Sent twice already in this attempt: more offers this round would only send it again.
        if (isRecorderError(error, 'UPLOAD_HASH_MISMATCH')) throw (await this.damage(item)) ?? error;
      }
    }
    throw lastError;
  }

  /**
   * Journals a receipt the device refused. The body holds strings and integers only (DESIGN.md
   * "journal"); the receipt itself came from the network, so it is named by the SHA-256 of its
   * canonical JSON rather than copied in. A failure to journal does not hide the refusal: the
   * caller throws the check's error either way.
   */
  private async journalRefusal(item: PendingUpload, receipt: Receipt, error: RecorderError): Promise<void> {
    try {
      // Named by its JSON text when it has no canonical JSON (a lone surrogate in a string).
      let text: string;
      try {
        text = canonicalize(receipt);
      } catch {
        text = JSON.stringify(receipt);
      }
      const receiptHash = createHash('sha256').update(text).digest('hex');
      const key = `${item.file} ${receiptHash}`;
      if (this.refused.has(key)) return;
      await this.options.journal.append(RECEIPT_REFUSED_KIND, {
        file: item.file,
        seq: item.seq,
        code: error.code,
        receiptId: wellFormed(receipt.receipt.id),
        receiptHash,
        reason: wellFormed(error.message.slice(0, 500)),
      });
      this.refused.add(key);
    } catch {
      // the item stays pending and the round reports the refusal; the next refusal tries again
    }
  }

  /**
   * The gateway found the bytes sent not to match the item's hash after a full resend: when the
   * local copy does not hash to its journal entry either, it is damaged on this device (R18), and
   * the error says so. It is kept: the journal entry and the file are all there is of it.
   */
  private async damage(item: PendingUpload): Promise<RecorderError | null> {
    const path = join(this.options.evidenceDir, item.file);
    const found = await hashFile(path).catch(() => null);
    if (!found || (found.sha256 === item.sha256 && found.bytes === item.bytes)) return null;
    // R18: the damage goes into the journal too (once per file and hash it was found with), so
    // the station's copy of the journal shows it whether or not anyone reads this round's result.
    const key = `${item.file} ${found.sha256}`;
    if (!this.damaged.has(key)) {
      await this.options.journal
        .append(EVIDENCE_DAMAGED_KIND, {
          file: item.file,
          seq: item.seq,
          bytes: found.bytes,
          sha256: found.sha256,
          expectedBytes: item.bytes,
          expectedSha256: item.sha256,
        })
        .then(
          () => this.damaged.add(key),
          () => undefined, // the round reports it either way; the next finding tries again
        );
    }
    return new RecorderError(
      'EVIDENCE_MISMATCH',
      `the local copy of ${item.file} (${path}) does not hash to its journal entry (${item.bytes} bytes, ` +
        `SHA-256 ${item.sha256}): it is damaged on this device and the gateway refuses it; it is kept ` +
        'and offered again each round (`recorder verify --state` on this device lists what else is damaged)',
      { file: item.file },
    );
  }

  private async attempt(item: PendingUpload, offer: Offer, onOffered?: () => void): Promise<Receipt> {
    // Opened only when bytes must go: an item receipted before a crash may have no file left,
    // and the gateway answers `have` with its receipt without needing any.
    let handle: FileHandle | null = null;
    let reader: ReadAhead | null = null;
    try {
      return await this.sender.sendItem(
        offer,
        async (position, into) => {
          handle ??= await open(join(this.options.evidenceDir, item.file), 'r');
          reader ??= new ReadAhead(handle);
          return reader.read(position, into);
        },
        (sent) => this.options.onProgress?.(item, sent),
        onOffered,
      );
    } finally {
      await (reader as ReadAhead | null)?.close();
      await (handle as FileHandle | null)?.close();
    }
  }
}

/** The text with each lone surrogate replaced by U+FFFD: journal bodies must have canonical JSON. */
function wellFormed(text: string): string {
  return text.replace(/\p{Cs}/gu, '\uFFFD');
}
