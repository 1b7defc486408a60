/**
 * Uploads sealed evidence to the station (DESIGN.md "Uploads"), independent of the transport.
 *
 * For each pending item, in upload order (marked events first, then oldest): offer the device-signed
 * journal entry with the ciphertext size and hash, send the bytes the gateway does not hold yet in
 * chunks with a window in flight, say done, and wait for the gateway's signed receipt. Only a
 * receipt for exactly this item (checkReceipt) is journaled, and only then is the local copy
 * deleted. Anything else — a timeout, a refusal, a cut connection — leaves the item where it was.
 */
import type { KeyObject } from 'node:crypto';
import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { RecorderError, isRecorderError } from '../protocol/errors.ts';
import type { JournalEntry, JsonObject } from '../protocol/journal-entry.ts';
import {
  checkReceipt,
  uploadOrder,
  type JournalState,
  type Offer,
  type Receipt,
  type UploadLink,
  type UploadState,
} from '../protocol/upload.ts';

export interface PendingUpload {
  /** evidence file name (also the upload id) */
  file: string;
  sha256: string;
  bytes: number;
  /** journal seq of the entry that sealed it */
  seq: number;
  /** ISO time */
  sealedAt: string;
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
  /** journals the receipt (must be durable when it resolves) */
  journal: { append(kind: string, body: JsonObject): Promise<JournalEntry> };
  /** removes an item from the pending queue once receipted and deleted */
  forget: (file: string) => Promise<unknown>;
  /** the journal file, sent whole so the station holds the device's whole chain */
  journalPath?: string;
  /** journal lines per message. Default 200. */
  journalBatchLines?: number;
  /** Default 256 KiB. */
  chunkBytes?: number;
  /** chunks in flight. Default 8. */
  window?: number;
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

export class Uploader {
  private readonly chunkBytes: number;
  private readonly window: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: UploaderOptions) {
    this.chunkBytes = options.chunkBytes ?? 256 * 1024;
    this.window = options.window ?? 8;
    this.timeoutMs = options.replyTimeoutMs ?? 15_000;
  }

  /**
   * Sends the journal lines the station does not hold yet, until its head is the device's. Returns
   * the station's head. Throws UPLOAD_REFUSED when the station finds a gap, fork or forgery.
   */
  async syncJournal(): Promise<JournalState['head']> {
    if (!this.options.journalPath) throw new RecorderError('UPLOAD_FAILED', 'no journal path configured');
    const text = await readFile(this.options.journalPath, 'utf8');
    // Only complete lines: a torn tail is not part of the chain until the writer moves it aside.
    const lines = text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .slice(0, -1);
    const batchLines = this.options.journalBatchLines ?? 200;
    const states: JournalState[] = [];
    let wake: (() => void) | null = null;
    const onState = (state: JournalState) => {
      states.push(state);
      wake?.();
    };
    this.options.link.on('journal-state', onState);
    try {
      if (lines.length === 0) return null;
      // Start optimistic at 0; the station answers with its head and we go on from there. At least
      // one line goes out each time, so a station that holds everything still says so.
      let from = 0;
      for (let rounds = 0; rounds < lines.length / batchLines + 20; rounds++) {
        const start = Math.min(from, lines.length - 1);
        states.length = 0;
        await this.options.link.sendJournal({ from: start, lines: lines.slice(start, start + batchLines) });
        const deadline = Date.now() + this.timeoutMs;
        while (states.length === 0 && Date.now() < deadline) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, deadline - Date.now());
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = null;
        }
        const state = states.shift();
        if (!state) continue; // lost on the way: send again
        if (state.status === 'refused') {
          throw new RecorderError(
            'UPLOAD_REFUSED',
            `the station refused the journal: ${state.code ?? ''} ${state.reason ?? ''}`.trim(),
          );
        }
        const held = state.head ? state.head.seq + 1 : 0;
        if (held >= lines.length) return state.head;
        from = held;
      }
      throw new RecorderError('UPLOAD_TIMEOUT', 'the journal did not reach the station');
    } finally {
      this.options.link.off('journal-state', onState);
    }
  }

  /** One pass over everything pending, in upload order. */
  async uploadAll(): Promise<UploadRoundResult> {
    const result: UploadRoundResult = { receipted: [], failed: [] };
    const items = uploadOrder(
      this.options.pending().map((item) => ({
        ...item,
        id: item.file,
        sealedAt: Date.parse(item.sealedAt),
        marked: item.marked ?? false,
        item,
      })),
    );
    for (const { item } of items) {
      try {
        await this.uploadOne(item);
        result.receipted.push(item.file);
      } catch (error) {
        result.failed.push({
          file: item.file,
          code: isRecorderError(error) ? error.code : 'UPLOAD_FAILED',
          message: (error as Error).message,
        });
      }
    }
    return result;
  }

  /** Uploads one item until a valid receipt is journaled and the local copy deleted. */
  async uploadOne(item: PendingUpload): Promise<Receipt> {
    const entry = await this.options.entryFor(item);
    const offer: Offer = { id: item.file, entry, bytes: item.bytes, sha256: item.sha256 };
    const attempts = this.options.maxAttempts ?? 5;
    let lastError: Error = new RecorderError('UPLOAD_TIMEOUT', `no answer for ${item.file}`);
    for (let attempt = 0; attempt < attempts; attempt++) {
      try {
        const receipt = await this.attempt(item, offer);
        const body = checkReceipt(
          receipt,
          { id: item.file, device: this.options.device, entry, bytes: item.bytes, sha256: item.sha256 },
          this.options.gatewayKey,
        );
        // Journal first, delete second: a crash in between leaves a receipted file, never a lost one.
        await this.options.journal.append('upload-receipt', {
          file: item.file,
          seq: item.seq,
          sha256: item.sha256,
          bytes: item.bytes,
          holder: body.holder,
          role: body.role,
          storedAt: body.storedAt,
          receiptSig: receipt.sig,
        });
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
      }
    }
    throw lastError;
  }

  private async attempt(item: PendingUpload, offer: Offer): Promise<Receipt> {
    const replies = this.collect(item.file);
    try {
      await this.options.link.sendOffer(offer);
      let state = await replies.nextState();
      for (;;) {
        if (state.status === 'refused' && state.code === 'UPLOAD_NO_OFFER') {
          // The gateway restarted and lost the session: offer again, it resumes from its file.
          throw new RecorderError('UPLOAD_TIMEOUT', `the gateway forgot the offer of ${item.file}`);
        }
        if (state.status === 'refused') {
          throw new RecorderError(
            'UPLOAD_REFUSED',
            `the gateway refused ${item.file}: ${state.code ?? ''} ${state.reason ?? ''}`.trim(),
            {
              code: state.code,
            },
          );
        }
        if (state.status === 'have') return await replies.receipt();
        await this.sendFrom(item, state.offset);
        await this.options.link.sendDone({ id: item.file, bytes: item.bytes, sha256: item.sha256 });
        state = await replies.nextState();
      }
    } finally {
      replies.close();
    }
  }

  private async sendFrom(item: PendingUpload, offset: number): Promise<void> {
    const handle = await open(join(this.options.evidenceDir, item.file), 'r');
    try {
      const inFlight = new Set<Promise<void>>();
      for (let position = offset; position < item.bytes; position += this.chunkBytes) {
        const length = Math.min(this.chunkBytes, item.bytes - position);
        const data = Buffer.alloc(length);
        const { bytesRead } = await handle.read(data, 0, length, position);
        if (bytesRead !== length)
          throw new RecorderError('UPLOAD_FAILED', `${item.file} is shorter than its journal entry says`);
        const sent = this.options.link.sendChunk(item.file, position, data).then(() => {
          inFlight.delete(sent);
          this.options.onProgress?.(item, position + length);
        });
        // Observed through race/all below; this keeps the others of a failed window from being
        // reported as unhandled when a cut connection fails them all at once.
        sent.catch(() => undefined);
        inFlight.add(sent);
        if (inFlight.size >= this.window) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
    } finally {
      await handle.close();
    }
  }

  /** Queues the states and receipts for one id, so none is missed between awaits. */
  private collect(id: string) {
    const states: UploadState[] = [];
    const receipts: Receipt[] = [];
    let wake: (() => void) | null = null;
    const onState = (s: UploadState) => {
      if (s.id !== id) return;
      states.push(s);
      wake?.();
    };
    const onReceipt = (r: Receipt) => {
      if (r.receipt.id !== id) return;
      receipts.push(r);
      wake?.();
    };
    this.options.link.on('state', onState);
    this.options.link.on('receipt', onReceipt);
    const wait = async <T>(queue: T[], what: string): Promise<T> => {
      const deadline = Date.now() + this.timeoutMs;
      while (queue.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0)
          throw new RecorderError('UPLOAD_TIMEOUT', `no ${what} for ${id} within ${this.timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
      return queue.shift()!;
    };
    return {
      nextState: () => wait(states, 'upload state'),
      receipt: () => wait(receipts, 'receipt'),
      close: () => {
        this.options.link.off('state', onState);
        this.options.link.off('receipt', onReceipt);
      },
    };
  }
}
