/**
 * When the recorder uploads (issue 6 item 3): docked (external power) and connected to the gateway.
 * Then it syncs its journal and uploads every pending item, again whenever an item is sealed while
 * docked, with exponential backoff and jitter after a failure. Undocking stops after the chunks in
 * flight: the link refuses every further message, the Uploader gives up the round, and the item
 * stays pending (the gateway resumes it from what it holds at the next dock).
 *
 * The link is protocol/upload-mqtt.ts on the telemetry client's own TLS connection; the queue is
 * the state store's upload queue (pending() and forget() read and shrink it), in upload order:
 * items of events with marks first (the store's mark set), then oldest first.
 */
import type { KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { RecorderError } from '../protocol/errors.ts';
import type { JournalEntry } from '../protocol/journal-entry.ts';
import type { Done, JournalBatch, Offer, UploadLink } from '../protocol/upload.ts';
import type { StateStore } from './state-store.ts';
import { Uploader, type PendingUpload, type UploadRoundResult, type UploaderJournal } from './uploader.ts';

export interface UploadRunnerOptions {
  /** the transport (an MqttUploadLink on the telemetry connection) */
  link: UploadLink;
  device: string;
  evidenceDir: string;
  journalPath: string;
  /** the pinned receipt-signing key of the gateway */
  gatewayKey: KeyObject;
  store: StateStore;
  /** the device journal (the recorder's own serialised append, and the writer's durable head) */
  journal: UploaderJournal;
  /** Default 256 KiB. */
  chunkBytes?: number;
  /** Default 8. */
  window?: number;
  /** items on their way at once (Uploader `itemsInFlight`). Default 2. */
  itemsInFlight?: number;
  /** how long to wait for a gateway reply. Default 15 s. */
  replyTimeoutMs?: number;
  /** backoff after a failed round: first delay and ceiling. Defaults 2 s and 5 min. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  random?: () => number;
  log?: (msg: string) => void;
}

/** Refuses further messages once closed, so an undock stops after the chunks already in flight. */
class GatedLink extends EventEmitter implements UploadLink {
  open = false;
  constructor(private readonly inner: UploadLink) {
    super();
    for (const event of ['state', 'receipt', 'journal-state'])
      inner.on(event, (value: unknown) => this.emit(event, value));
  }
  private gate(): void {
    if (!this.open) throw new RecorderError('UPLOAD_FAILED', 'uploads stopped (undocked or disconnected)');
  }
  async sendOffer(offer: Offer): Promise<void> {
    this.gate();
    await this.inner.sendOffer(offer);
  }
  async sendChunk(id: string, offset: number, data: Buffer): Promise<void> {
    this.gate();
    await this.inner.sendChunk(id, offset, data);
  }
  async sendDone(done: Done): Promise<void> {
    this.gate();
    await this.inner.sendDone(done);
  }
  async sendJournal(batch: JournalBatch): Promise<void> {
    this.gate();
    await this.inner.sendJournal(batch);
  }
}

/**
 * Events: 'round' (UploadRoundResult) after every pass, 'idle' when nothing is left to do while
 * docked and connected, 'error' never (failures are logged and retried with backoff).
 */
export class UploadRunner extends EventEmitter {
  private readonly link: GatedLink;
  private readonly uploader: Uploader;
  private docked = false;
  private connected = false;
  private running: Promise<void> | null = null;
  private again = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** entries of pending items, by seq; dropped when the item is receipted */
  private readonly entries = new Map<number, JournalEntry>();
  private loading: Promise<void> | null = null;

  constructor(private readonly options: UploadRunnerOptions) {
    super();
    this.link = new GatedLink(options.link);
    this.uploader = new Uploader({
      link: this.link,
      device: options.device,
      evidenceDir: options.evidenceDir,
      gatewayKey: options.gatewayKey,
      pending: () => this.pending(),
      entryFor: (item) => this.entryFor(item),
      journal: options.journal,
      forget: (file) => {
        const seq = options.store.data.uploadQueue.find((i) => i.file === file)?.seq;
        if (seq !== undefined) this.entries.delete(seq);
        return options.store.removeUpload(file);
      },
      journalPath: options.journalPath,
      ...(options.chunkBytes ? { chunkBytes: options.chunkBytes } : {}),
      ...(options.window ? { window: options.window } : {}),
      ...(options.itemsInFlight ? { itemsInFlight: options.itemsInFlight } : {}),
      ...(options.replyTimeoutMs ? { replyTimeoutMs: options.replyTimeoutMs } : {}),
      maxAttempts: 3,
    });
  }

  /**
   * The state store's queue as the Uploader sees it. Issue 6: an item is marked when its event is
   * in the store's mark set, so every segment of a marked event goes first, also those sealed
   * before the mark was pressed.
   */
  private pending(): PendingUpload[] {
    const { store } = this.options;
    return store.data.uploadQueue.map((i) => ({
      file: i.file,
      sha256: i.sha256,
      bytes: i.bytes,
      seq: i.seq,
      sealedAt: i.sealedAt,
      event: i.event,
      marked: store.isMarked(i),
    }));
  }

  /**
   * The signed journal entry that sealed an item. The journal is read once for every item pending
   * at the time, not once per item: a shift's journal holds some 6,000 lines (about 6 MB), and
   * reading and splitting it for each of the shift's 2,880 segments made every item dearer than
   * the one before.
   */
  private async entryFor(item: PendingUpload): Promise<JournalEntry> {
    let entry = this.entries.get(item.seq);
    if (!entry) {
      await (this.loading ??= this.loadEntries().finally(() => (this.loading = null)));
      entry = this.entries.get(item.seq);
    }
    if (!entry) {
      // Queued after that read began: read again for it.
      await this.loadEntries();
      entry = this.entries.get(item.seq);
    }
    if (!entry) throw new RecorderError('UPLOAD_FAILED', `no journal entry ${item.seq} for ${item.file}`);
    return entry;
  }

  /** Reads the entries of the items now pending into `entries` (line `seq` of the journal, seq from 0). */
  private async loadEntries(): Promise<void> {
    const wanted = new Set(this.options.store.data.uploadQueue.map((i) => i.seq));
    const text = await readFile(this.options.journalPath, 'utf8');
    // Complete lines only: the writer may be appending one right now.
    const lines = text.slice(0, text.lastIndexOf('\n') + 1).split('\n');
    const take = (line: string | undefined) => {
      if (!line) return;
      let entry: JournalEntry;
      try {
        entry = JSON.parse(line) as JournalEntry;
      } catch {
        return; // not an entry; the chain check at the station reports the line
      }
      if (wanted.has(entry.seq)) this.entries.set(entry.seq, entry);
    };
    for (const seq of wanted) take(lines[seq]);
    // A line not where its seq says (never written so, but the file is not ours to trust): look at all.
    if ([...wanted].some((seq) => !this.entries.has(seq))) for (const line of lines) take(line);
  }

  get active(): boolean {
    return this.docked && this.connected && !this.stopped;
  }

  setDocked(docked: boolean): void {
    this.docked = docked;
    this.update();
  }

  setConnected(connected: boolean): void {
    this.connected = connected;
    this.update();
  }

  /** A new item was sealed: upload it too if docked. */
  kick(): void {
    if (!this.active) return;
    this.failures = 0;
    this.schedule(0);
  }

  private update(): void {
    this.link.open = this.active;
    if (this.active) {
      this.failures = 0;
      this.schedule(0);
    } else if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
  }

  private schedule(delayMs: number): void {
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.round();
    }, delayMs);
    this.retryTimer.unref?.();
  }

  private round(): Promise<void> {
    if (!this.active || this.running) return this.running ?? Promise.resolve();
    this.again = false;
    this.running = (async () => {
      let result: UploadRoundResult;
      try {
        await this.uploader.syncJournal();
        result = await this.uploader.uploadAll();
        // The receipts just journaled go to the station's copy of the journal too.
        if (result.receipted.length) await this.uploader.syncJournal();
      } catch (error) {
        result = {
          receipted: [],
          failed: [
            {
              file: '(journal)',
              code: (error as RecorderError).code ?? 'UPLOAD_FAILED',
              message: String(error),
            },
          ],
        };
      }
      this.emit('round', result);
      for (const f of result.failed) this.options.log?.(`upload of ${f.file} failed: ${f.message}`);
      if (result.failed.length) this.failures++;
      else this.failures = 0;
    })().finally(() => {
      this.running = null;
      if (!this.active) return;
      if (this.failures > 0) this.schedule(this.backoff());
      else if (this.again || this.pending().length > 0) this.schedule(0);
      else this.emit('idle');
    });
    return this.running;
  }

  /** Exponential backoff with full jitter: a station back from an outage must not see every device at once. */
  private backoff(): number {
    const min = this.options.backoffMinMs ?? 2000;
    const max = this.options.backoffMaxMs ?? 300_000;
    const ceiling = Math.min(max, min * 2 ** Math.min(this.failures - 1, 20));
    return Math.round(min / 2 + (this.options.random ?? Math.random)() * (ceiling - min / 2));
  }

  /** Stops scheduling; resolves when the round in progress ends (after its chunks in flight). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.update();
    await this.running;
  }
}
