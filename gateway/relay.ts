/**
 * The station → center relay (issue 6 item 4; R8 off-site backup at the provincial database):
 * every receipted item not relayed yet, and every device journal, goes to the center's gateway
 * with the same upload protocol the devices use (protocol/upload-sender.ts), each offer carrying
 * the device's certificate so the center can check the device's signatures itself.
 *
 * An item is marked relayed only when the center's receipt verifies with the center's receipt key
 * and names exactly this item (id, device, entry, size, ciphertext hash) held by a center. Nothing
 * is deleted before that; after `purgeAfterDays` (0 = never) only the object file of a relayed
 * item is deleted, once its center receipt checks again (not on the index's word), and the purge
 * is recorded: the index row and both receipts stay. A device's journal counts as relayed up to
 * the line the center's journal receipt names, checked the same way; the receipt is kept with it.
 *
 * The center unreachable: every attempt fails with a timeout, the round ends, and the next one
 * waits with exponential backoff and jitter (mqtt.js reconnects at a fixed period: STACK-NOTES).
 * An item whose bytes the center finds not to match its hash after a resend is given up for the
 * round, checked against its index row here, and alerted; the round goes on with the others.
 */
import { EventEmitter } from 'node:events';
import type { KeyObject } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { RecorderError, isRecorderError, type ErrorCode } from '../protocol/errors.ts';
import { sha256Hex, type JournalEntry } from '../protocol/journal-entry.ts';
import { UploadSender, type SenderTimers } from '../protocol/upload-sender.ts';
import { checkJournalReceipt, checkReceipt, type Offer, type UploadLink } from '../protocol/upload.ts';
import type { EvidenceStore, StoredItem } from './evidence-store.ts';

const DAY_MS = 86_400_000;

export interface RelayOptions {
  store: EvidenceStore;
  /** the link to the center for one device's topics (MQTT: an MqttUploadLink on the relay's client) */
  linkFor: (device: string) => UploadLink | Promise<UploadLink>;
  /** the center's receipt-signing public key (upstream.receiptKey) */
  centerReceiptKey: KeyObject;
  /** days a relayed item's object stays here; 0 keeps it for ever. Default 30. */
  purgeAfterDays?: number;
  /** wall clock for relayedAt, purges and backoff. Default `() => new Date()`. */
  now?: () => Date;
  /** Default the global timers. */
  timers?: SenderTimers;
  /** Default 256 KiB. */
  chunkBytes?: number;
  /** chunks in flight. Default 8. */
  window?: number;
  /** how long to wait for each answer of the center. Default 15 s. */
  replyTimeoutMs?: number;
  /** offers of one item per round when the center does not answer. Default 3. */
  maxAttempts?: number;
  /** backoff after a round with failures: from this, doubling. Default 2 s. */
  backoffMinMs?: number;
  /** … up to this. Default 5 min. */
  backoffMaxMs?: number;
  /** the wait between rounds when everything went through. Default 60 s. */
  idleMs?: number;
  /** items per round. Default 200. */
  batchItems?: number;
}

export interface RelayFailure {
  device: string;
  id: string | null;
  code: string;
  message: string;
}

export interface RelayRoundResult {
  relayed: { device: string; id: string }[];
  journals: { device: string; seq: number }[];
  purged: { device: string; id: string }[];
  failed: RelayFailure[];
}

/** Relay failures that say nothing of the item: the center did not answer, or is not connected. */
const CENTER_AWAY_CODES = new Set(['UPLOAD_TIMEOUT', 'MQTT_NOT_CONNECTED']);

/**
 * Events: 'relayed' {device, id, receipt}, 'journal' {device, seq}, 'purged' {device, id},
 * 'alert' RelayFailure (a refusal, a receipt that does not match, an item the center finds not to
 * match its hash: STORE_OBJECT_HASH when the object here is damaged, a purge refused), 'round'
 * RelayRoundResult.
 */
export class Relay extends EventEmitter {
  private readonly now: () => Date;
  private readonly timers: SenderTimers;
  private readonly links = new Map<string, Promise<UploadLink>>();
  private running: Promise<RelayRoundResult> | null = null;
  private loop: { stopped: boolean; timer: unknown; wake: (() => void) | null } | null = null;
  private failures = 0;
  /** items whose purge was refused and alerted (STORE_PURGE_REFUSED) */
  private readonly purgeRefused = new Set<string>();
  /** a wake() that came while a round ran, and why */
  private wokenDuringRound: 'news' | 'center-back' | null = null;

  constructor(private readonly options: RelayOptions) {
    super();
    this.now = options.now ?? (() => new Date());
    this.timers = options.timers ?? {
      setTimeout: (f, ms) => setTimeout(f, ms),
      clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
      now: () => Date.now(),
    };
  }

  /** One pass: journals, then items not relayed yet, then purges. Rounds never overlap. */
  runOnce(): Promise<RelayRoundResult> {
    this.running ??= this.round().finally(() => (this.running = null));
    return this.running;
  }

  /** Runs rounds until stop(): idle after a clean round, backoff after failures; wake() cuts a wait short. */
  start(): void {
    if (this.loop) return;
    const loop: { stopped: boolean; timer: unknown; wake: (() => void) | null } = {
      stopped: false,
      timer: null,
      wake: null,
    };
    this.loop = loop;
    void (async () => {
      while (!loop.stopped) {
        let result: RelayRoundResult | null = null;
        try {
          result = await this.runOnce();
        } catch (error) {
          this.emit('alert', {
            device: '',
            id: null,
            code: 'RELAY_FAILED',
            message: (error as Error).message,
          } satisfies RelayFailure);
        }
        if (loop.stopped) break;
        const delay = this.delayAfter(result);
        // Woken while the round ran: what arrived meanwhile goes in the next round, at once.
        const woken = this.wokenDuringRound;
        this.wokenDuringRound = null;
        if (woken === 'center-back' || (woken === 'news' && this.failures === 0)) continue;
        await new Promise<void>((resolve) => {
          loop.wake = () => {
            this.timers.clearTimeout(loop.timer);
            loop.wake = null;
            resolve();
          };
          loop.timer = this.timers.setTimeout(() => loop.wake?.(), delay);
        });
      }
    })();
  }

  /**
   * Relay now instead of after the wait. `news` (an item stored, journal lines kept) cuts short
   * only the idle wait: during a backoff the center is failing, and a busy station would otherwise
   * retry it on every journal batch. Without it (the connection to the center is back) any wait.
   */
  wake(reason: 'news' | 'center-back' = 'center-back'): void {
    if (!this.loop) return;
    if (this.loop.wake) {
      if (reason === 'news' && this.failures > 0) return;
      this.loop.wake();
    } else if (this.wokenDuringRound !== 'center-back') this.wokenDuringRound = reason;
  }

  async stop(): Promise<void> {
    if (this.loop) {
      this.loop.stopped = true;
      this.loop.wake?.();
      this.loop = null;
    }
    await this.running?.catch(() => undefined);
  }

  private delayAfter(result: RelayRoundResult | null): number {
    if (result && result.failed.length === 0) {
      this.failures = 0;
      return this.options.idleMs ?? 60_000;
    }
    this.failures += 1;
    const min = this.options.backoffMinMs ?? 2000;
    const max = this.options.backoffMaxMs ?? 300_000;
    const base = Math.min(max, min * 2 ** Math.min(this.failures - 1, 20));
    // Jitter: stations that lost the center together do not come back in step.
    return Math.round(base * (0.5 + Math.random() / 2));
  }

  private sender(link: UploadLink): UploadSender {
    return new UploadSender({
      link,
      timers: this.timers,
      ...(this.options.chunkBytes ? { chunkBytes: this.options.chunkBytes } : {}),
      ...(this.options.window ? { window: this.options.window } : {}),
      ...(this.options.replyTimeoutMs ? { replyTimeoutMs: this.options.replyTimeoutMs } : {}),
    });
  }

  private link(device: string): Promise<UploadLink> {
    let link = this.links.get(device);
    if (!link) {
      link = Promise.resolve(this.options.linkFor(device));
      // A link that could not be made (a refused subscription) is tried again next round.
      link.catch(() => this.links.delete(device));
      this.links.set(device, link);
    }
    return link;
  }

  private async round(): Promise<RelayRoundResult> {
    const result: RelayRoundResult = { relayed: [], journals: [], purged: [], failed: [] };
    const { store } = this.options;
    const fail = (failure: RelayFailure, alert: boolean) => {
      result.failed.push(failure);
      if (alert) this.emit('alert', failure);
    };
    for (const device of store.devices()) {
      try {
        const seq = await this.relayJournal(device);
        if (seq !== null) {
          result.journals.push({ device, seq });
          this.emit('journal', { device, seq });
        }
      } catch (error) {
        const code = isRecorderError(error) ? error.code : 'RELAY_FAILED';
        fail({ device, id: null, code, message: (error as Error).message }, code !== 'UPLOAD_TIMEOUT');
      }
    }
    for (const item of store.unrelayed(this.options.batchItems ?? 200)) {
      try {
        await this.relayItem(item);
        result.relayed.push({ device: item.device, id: item.id });
      } catch (error) {
        const code = isRecorderError(error) ? error.code : 'RELAY_FAILED';
        const message = (error as Error).message;
        store.setRelayError(item.device, item.id, message, !CENTER_AWAY_CODES.has(code));
        fail({ device: item.device, id: item.id, code, message }, code !== 'UPLOAD_TIMEOUT');
      }
    }
    const days = this.options.purgeAfterDays ?? 30;
    if (days > 0) {
      const now = this.now();
      const before = new Date(now.getTime() - days * DAY_MS).toISOString();
      for (const item of store.purgeable(before)) {
        try {
          if (store.purgeObject(item.device, item.id, now.toISOString(), this.options.centerReceiptKey)) {
            result.purged.push({ device: item.device, id: item.id });
            this.emit('purged', { device: item.device, id: item.id });
          }
        } catch (error) {
          // Marked relayed without a center receipt that checks: the index was edited or damaged,
          // and the object may be the only copy. It stays; said once per item, not every round
          // (and not a round failure: relaying the rest must not back off for it).
          const key = `${item.device}\u0000${item.id}`;
          if (this.purgeRefused.has(key)) continue;
          this.purgeRefused.add(key);
          this.emit('alert', {
            device: item.device,
            id: item.id,
            code: isRecorderError(error) ? error.code : 'STORE_PURGE_REFUSED',
            message: (error as Error).message,
          } satisfies RelayFailure);
        }
      }
    }
    this.emit('round', result);
    return result;
  }

  /**
   * Sends the journal lines the center lacks and keeps the center's receipt for the chain up to the
   * station's last line; returns that seq, or null when the center had them and its receipt is held.
   */
  private async relayJournal(device: string): Promise<number | null> {
    const { store } = this.options;
    const rows = store.journalRows(device);
    if (rows.length === 0) return null;
    const relayed = store.relayedJournalHead(device);
    const last = rows.at(-1)!;
    if (relayed?.receipt && relayed.seq === last.seq && relayed.hash === last.hash) return null;
    const cert = this.certificate(device);
    const state = await this.sender(await this.link(device)).syncJournal(
      rows.map((r) => r.line),
      {
        startAt: relayed ? Math.min(relayed.seq + 1, last.seq) : 0,
        deviceCert: cert,
        maxLost: this.options.maxAttempts ?? 3,
      },
    );
    const head = state?.head ?? null;
    // The center's head must be a line we hold, byte for byte: anything else is a fork.
    if (!head || rows[head.seq]?.hash !== head.hash) {
      throw new RecorderError(
        'RELAY_FAILED',
        `the center's journal head for ${device} (${head ? head.seq : 'none'}) is not the station's line`,
      );
    }
    if (!state?.receipt) {
      throw new RecorderError(
        'RECEIPT_MISSING',
        `the center gave no receipt for the journal of ${device} up to line ${head.seq}`,
      );
    }
    const body = checkJournalReceipt(state.receipt, { device, ...head }, this.options.centerReceiptKey);
    if (body.role !== 'center') {
      throw new RecorderError(
        'RECEIPT_MISMATCH',
        `the journal receipt for ${device} is from a ${body.role}, not a center`,
      );
    }
    store.setRelayedJournalHead(device, head, JSON.stringify(state.receipt), this.now().toISOString());
    return head.seq;
  }

  private certificate(device: string): string {
    const known = this.options.store.knownDevice(device);
    if (!known?.certPem) {
      throw new RecorderError(
        'RELAY_NO_CERTIFICATE',
        `the station holds no certificate for ${device}; the center could not check its signatures`,
        { device },
      );
    }
    return known.certPem;
  }

  /**
   * The center found the bytes sent not to match the item's hash even after a full resend: when the
   * object here does not match its own index row either, it is evidence damaged at the station
   * (R18), not a fault of the link, and the error says so. Null when the object is intact.
   */
  private async damage(item: StoredItem): Promise<RecorderError | null> {
    const problem = await this.options.store.checkObject(item);
    if (!problem) return null;
    const path = this.options.store.objectPath(item.sha256);
    return new RecorderError(
      problem as ErrorCode,
      `the station's object of ${item.id} (${path}) does not match its index row (${item.bytes} bytes, ` +
        `SHA-256 ${item.sha256}): the evidence is damaged here and the center refuses it; it stays ` +
        'unrelayed and is tried again each round (run `recorder evidence verify` on this station)',
      { device: item.device, id: item.id },
    );
  }

  private async relayItem(item: StoredItem): Promise<void> {
    const { store } = this.options;
    const entry = JSON.parse(item.entryLine) as JournalEntry;
    if (sha256Hex(item.entryLine) !== item.entryHash)
      throw new RecorderError(
        'STORE_ENTRY_INVALID',
        `the stored entry of ${item.id} does not hash to its index row`,
      );
    const offer: Offer = {
      id: item.id,
      entry,
      bytes: item.bytes,
      sha256: item.sha256,
      deviceCert: this.certificate(item.device),
    };
    const sender = this.sender(await this.link(item.device));
    const attempts = this.options.maxAttempts ?? 3;
    let handle: FileHandle | null = null;
    try {
      let lastError: Error = new RecorderError('UPLOAD_TIMEOUT', `no answer for ${item.id}`);
      for (let attempt = 0; attempt < attempts; attempt++) {
        let receipt;
        try {
          receipt = await sender.sendItem(offer, async (position, into) => {
            handle ??= await open(store.objectPath(item.sha256), 'r');
            return (await handle.read(into, 0, into.length, position)).bytesRead;
          });
        } catch (error) {
          lastError = error as Error;
          if (isRecorderError(error, 'UPLOAD_TIMEOUT')) continue;
          if (isRecorderError(error, 'UPLOAD_HASH_MISMATCH')) throw (await this.damage(item)) ?? error;
          throw error;
        }
        // Only a receipt for exactly this item, by a center, marks it relayed.
        const body = checkReceipt(
          receipt,
          { id: item.id, device: item.device, entry, bytes: item.bytes, sha256: item.sha256 },
          this.options.centerReceiptKey,
        );
        if (body.role !== 'center') {
          throw new RecorderError(
            'RECEIPT_MISMATCH',
            `the receipt for ${item.id} is from a ${body.role}, not a center`,
          );
        }
        store.markRelayed(item.device, item.id, JSON.stringify(receipt), this.now().toISOString());
        this.emit('relayed', { device: item.device, id: item.id, receipt });
        return;
      }
      throw lastError;
    } finally {
      await (handle as FileHandle | null)?.close();
    }
  }
}
