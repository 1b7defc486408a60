/**
 * The sending side of the upload exchange (DESIGN.md "Uploads"), shared by the device's uploader
 * and a station's relay to its center (issue 6 item 4): offer → states → chunks with a window in
 * flight → done → the receipt; and the journal sync in batches until the receiver's head is ours.
 *
 * What to send, whether a receipt is good enough to act on, and what to do then (journal it,
 * delete, mark relayed) stay with the caller. protocol/ has no timers and no I/O: the caller
 * passes its timer functions and a `readChunk` that reads the item's bytes.
 */
import { RecorderError } from './errors.ts';
import type { JournalState, Offer, Receipt, UploadLink, UploadState } from './upload.ts';

/** The timer functions of the caller's runtime (globalThis.setTimeout / clearTimeout, or a test's). */
export interface SenderTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** ms, monotonic enough for deadlines */
  now(): number;
}

export interface UploadSenderOptions {
  link: UploadLink;
  timers: SenderTimers;
  /** Default 256 KiB. */
  chunkBytes?: number;
  /** chunks in flight. Default 8. */
  window?: number;
  /** how long to wait for a state, receipt or journal state. Default 15 s. */
  replyTimeoutMs?: number;
  /**
   * Full sends again after the receiver found the bytes not to match the offer's hash. Default 1:
   * a chunk corrupted on the way is sent once more, and a source that is damaged itself (bit rot
   * in a station's object, a corrupt file on a device) ends the attempt instead of being sent for
   * ever.
   */
  resendsAfterMismatch?: number;
}

export class UploadSender {
  readonly chunkBytes: number;
  readonly window: number;
  readonly timeoutMs: number;
  readonly resendsAfterMismatch: number;

  constructor(private readonly options: UploadSenderOptions) {
    this.chunkBytes = options.chunkBytes ?? 256 * 1024;
    this.window = options.window ?? 8;
    this.timeoutMs = options.replyTimeoutMs ?? 15_000;
    this.resendsAfterMismatch = options.resendsAfterMismatch ?? 1;
  }

  /**
   * One attempt at one item: offer, send the bytes the receiver does not hold, say done, until it
   * answers `have` with a receipt. Returns the receipt unchecked (the caller checks it against
   * what it holds). Throws UPLOAD_TIMEOUT when an answer did not come (try again: the receiver
   * resumes from what it holds), UPLOAD_REFUSED with the receiver's code (do not retry blindly), or
   * UPLOAD_HASH_MISMATCH when the receiver found the bytes not to match the hash more often than
   * `resendsAfterMismatch` allows (check the source against its hash before trying again).
   *
   * `readChunk(offset, into)` fills `into` with the item's bytes from `offset` and returns how many
   * it read. The sender reuses `window + 1` buffers for the whole item: a fresh 256 KiB buffer per
   * chunk made the recorder spend a fifth of its upload CPU in garbage collection.
   *
   * `onOffered` is called once the offer is sent, so a caller with several items on their way can
   * let the next one offer only after this one did.
   */
  async sendItem(
    offer: Offer,
    readChunk: (offset: number, into: Buffer) => Promise<number>,
    onProgress?: (sent: number) => void,
    onOffered?: () => void,
  ): Promise<Receipt> {
    const replies = this.collect(offer.id);
    try {
      await this.options.link.sendOffer(offer);
      onOffered?.();
      let state = await replies.nextState();
      let mismatches = 0;
      for (;;) {
        if (state.status === 'refused' && state.code === 'UPLOAD_NO_OFFER') {
          // The receiver restarted and lost the session: offer again, it resumes from its file.
          throw new RecorderError('UPLOAD_TIMEOUT', `the gateway forgot the offer of ${offer.id}`);
        }
        if (state.status === 'refused') {
          throw new RecorderError(
            'UPLOAD_REFUSED',
            `the gateway refused ${offer.id}: ${state.code ?? ''} ${state.reason ?? ''}`.trim(),
            { code: state.code },
          );
        }
        if (state.status === 'have') return await replies.receipt();
        // The receiver dropped what it held and asks for everything again (DESIGN.md "Uploads").
        if (state.code === 'UPLOAD_HASH_MISMATCH' && ++mismatches > this.resendsAfterMismatch) {
          throw new RecorderError(
            'UPLOAD_HASH_MISMATCH',
            `the gateway found the bytes of ${offer.id} not to hash to ${offer.sha256} ${mismatches} times; ` +
              'given up for now: check the file against its hash (damaged here, or a link that corrupts data)',
            { mismatches },
          );
        }
        await this.sendFrom(offer, state.offset, readChunk, onProgress);
        await this.options.link.sendDone({ id: offer.id, bytes: offer.bytes, sha256: offer.sha256 });
        state = await replies.nextState();
      }
    } finally {
      replies.close();
    }
  }

  /**
   * Sends journal lines (index = seq, from 0) the receiver does not hold yet, in batches of
   * `batchLines`, until its head is our last line. Starts at `startAt` (default 0: the receiver
   * answers with its head and we go on from there; at least one line goes out each time, so a
   * receiver that holds everything still says so). Returns the receiver's last answer (its head and
   * its receipt for the chain up to it), or null when there are no lines. Throws UPLOAD_REFUSED for
   * a gap, fork or forgery, UPLOAD_TIMEOUT when it does not answer.
   */
  async syncJournal(
    lines: readonly string[],
    options: {
      batchLines?: number;
      startAt?: number;
      deviceCert?: string;
      /** batches that may go unanswered before UPLOAD_TIMEOUT. Default 20. */
      maxLost?: number;
    } = {},
  ): Promise<JournalState | null> {
    if (lines.length === 0) return null;
    const batchLines = options.batchLines ?? 200;
    const states: JournalState[] = [];
    const waiter = this.waiter();
    const onState = (state: JournalState) => {
      states.push(state);
      waiter.wake();
    };
    this.options.link.on('journal-state', onState);
    try {
      let from = options.startAt ?? 0;
      for (let rounds = 0; rounds < lines.length / batchLines + (options.maxLost ?? 20); rounds++) {
        const start = Math.min(from, lines.length - 1);
        states.length = 0;
        await this.options.link.sendJournal({
          from: start,
          lines: lines.slice(start, start + batchLines),
          ...(options.deviceCert ? { deviceCert: options.deviceCert } : {}),
        });
        const deadline = this.options.timers.now() + this.timeoutMs;
        while (states.length === 0 && this.options.timers.now() < deadline)
          await waiter.sleep(deadline - this.options.timers.now());
        const state = states.shift();
        if (!state) continue; // lost on the way: send again
        if (state.status === 'refused') {
          throw new RecorderError(
            'UPLOAD_REFUSED',
            `the gateway refused the journal: ${state.code ?? ''} ${state.reason ?? ''}`.trim(),
            { code: state.code },
          );
        }
        const held = state.head ? state.head.seq + 1 : 0;
        if (held >= lines.length) return state;
        from = held;
      }
      throw new RecorderError('UPLOAD_TIMEOUT', 'the journal did not reach the gateway');
    } finally {
      this.options.link.off('journal-state', onState);
    }
  }

  private async sendFrom(
    offer: Offer,
    offset: number,
    readChunk: (offset: number, into: Buffer) => Promise<number>,
    onProgress?: (sent: number) => void,
  ): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    // A buffer goes back to the pool only once its chunk is acknowledged (the link holds it no
    // longer, UploadLink.sendChunk); a failed chunk's buffer is left to the garbage collector.
    const free: Buffer[] = [];
    for (let position = offset; position < offer.bytes; position += this.chunkBytes) {
      const length = Math.min(this.chunkBytes, offer.bytes - position);
      const buffer = free.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes);
      const data = buffer.subarray(0, length);
      if ((await readChunk(position, data)) !== length)
        throw new RecorderError('UPLOAD_FAILED', `${offer.id} is shorter than its journal entry says`);
      const sent = this.options.link.sendChunk(offer.id, position, data).then(() => {
        inFlight.delete(sent);
        free.push(buffer);
        onProgress?.(position + length);
      });
      // Observed through race/all below; this keeps the others of a failed window from being
      // reported as unhandled when a cut connection fails them all at once.
      sent.catch(() => undefined);
      inFlight.add(sent);
      if (inFlight.size >= this.window) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  }

  /** One sleeper that a reply wakes early. */
  private waiter() {
    let wake: (() => void) | null = null;
    return {
      wake: () => wake?.(),
      sleep: (ms: number) =>
        new Promise<void>((resolve) => {
          const timer = this.options.timers.setTimeout(
            () => {
              wake = null;
              resolve();
            },
            Math.max(0, ms),
          );
          wake = () => {
            this.options.timers.clearTimeout(timer);
            wake = null;
            resolve();
          };
        }),
    };
  }

  /** Queues the states and receipts for one id, so none is missed between awaits. */
  private collect(id: string) {
    const states: UploadState[] = [];
    const receipts: Receipt[] = [];
    const waiter = this.waiter();
    const onState = (s: UploadState) => {
      if (s.id !== id) return;
      states.push(s);
      waiter.wake();
    };
    const onReceipt = (r: Receipt) => {
      if (r.receipt.id !== id) return;
      receipts.push(r);
      waiter.wake();
    };
    this.options.link.on('state', onState);
    this.options.link.on('receipt', onReceipt);
    const wait = async <T>(queue: T[], what: string): Promise<T> => {
      const deadline = this.options.timers.now() + this.timeoutMs;
      while (queue.length === 0) {
        const left = deadline - this.options.timers.now();
        if (left <= 0)
          throw new RecorderError('UPLOAD_TIMEOUT', `no ${what} for ${id} within ${this.timeoutMs} ms`);
        await waiter.sleep(left);
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
