/**
 * Connects a device Uploader to a gateway UploadReceiver through an in-process wire that can be
 * cut, can drop or corrupt messages, and can swap the receiver (a gateway restart). The MQTT
 * binding is tested separately; this exercises the protocol's resume and check logic.
 */
import { EventEmitter } from 'node:events';
import type { UploadLink } from '../../protocol/upload.ts';
import type { UploadReceiver } from '../../gateway/upload-receiver.ts';
import type { Done, JournalBatch, Offer, Receipt, UploadState } from '../../protocol/upload.ts';

export interface WireFaults {
  /** called for every message device→gateway with its running number; return 'drop' to lose it */
  onMessage?: (n: number, kind: 'offer' | 'chunk' | 'done' | 'journal') => 'pass' | 'drop' | 'corrupt';
}

export class TestWire extends EventEmitter implements UploadLink {
  count = 0;
  up = true;

  constructor(
    public receiver: UploadReceiver,
    private readonly device: string,
    private readonly faults: WireFaults = {},
  ) {
    super();
  }

  private fate(kind: 'offer' | 'chunk' | 'done' | 'journal'): 'pass' | 'drop' | 'corrupt' {
    const n = ++this.count;
    if (!this.up) return 'drop';
    return this.faults.onMessage?.(n, kind) ?? 'pass';
  }

  private deliver(reply: { state?: UploadState; receipt?: Receipt } | UploadState | null): void {
    if (!reply || !this.up) return;
    setImmediate(() => {
      if ('status' in reply) this.emit('state', reply);
      else {
        if (reply.state) this.emit('state', reply.state);
        if (reply.receipt) this.emit('receipt', reply.receipt);
      }
    });
  }

  async sendOffer(offer: Offer): Promise<void> {
    if (this.fate('offer') === 'drop') return;
    this.deliver(await this.receiver.offer(this.device, JSON.parse(JSON.stringify(offer))));
  }

  async sendChunk(id: string, offset: number, data: Buffer): Promise<void> {
    const fate = this.fate('chunk');
    if (fate === 'drop') return;
    const bytes = Buffer.from(data);
    if (fate === 'corrupt') bytes[0] = bytes[0]! ^ 0xff;
    this.deliver(await this.receiver.chunk(this.device, id, offset, bytes));
  }

  async sendDone(done: Done): Promise<void> {
    if (this.fate('done') === 'drop') return;
    this.deliver(await this.receiver.done(this.device, JSON.parse(JSON.stringify(done))));
  }

  async sendJournal(batch: JournalBatch): Promise<void> {
    if (this.fate('journal') === 'drop') return;
    const state = await this.receiver.journal(this.device, JSON.parse(JSON.stringify(batch)));
    if (this.up) setImmediate(() => this.emit('journal-state', state));
  }
}
