import test from 'ava';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isRecorderError } from '../../protocol/errors.ts';
import { EMPTY_HEAD, signEntry, type JournalEntry } from '../../protocol/journal-entry.ts';
import { entryHash, signReceipt, type Done, type Offer, type UploadLink } from '../../protocol/upload.ts';
import { UploadSender } from '../../protocol/upload-sender.ts';

const deviceKeys = generateKeyPairSync('ed25519');
const gatewayKeys = generateKeyPairSync('ed25519');

/**
 * A link that acknowledges chunks late and out of order, and remembers, for each chunk in flight,
 * the memory it was handed and a copy of its bytes at the time it was sent.
 */
class SlowLink extends EventEmitter implements UploadLink {
  readonly received = new Map<number, Buffer>();
  readonly inFlight = new Map<number, Buffer>();
  overlaps = 0;
  maxInFlight = 0;

  constructor(private readonly offer: Offer) {
    super();
  }

  async sendOffer(): Promise<void> {
    setImmediate(() => this.emit('state', { id: this.offer.id, status: 'send', offset: 0 }));
  }

  async sendChunk(_id: string, offset: number, data: Buffer): Promise<void> {
    for (const other of this.inFlight.values()) if (shareMemory(other, data)) this.overlaps++;
    this.inFlight.set(offset, data);
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight.size);
    this.received.set(offset, Buffer.from(data));
    // Later chunks are sometimes acknowledged before earlier ones.
    await new Promise((r) => setTimeout(r, offset % 3 === 0 ? 6 : 1));
    // What the sender wrote into the buffer must still be what was sent, right up to the ack.
    if (!data.equals(this.received.get(offset)!))
      throw new Error(`chunk at ${offset} changed before its ack`);
    this.inFlight.delete(offset);
  }

  async sendDone(done: Done): Promise<void> {
    const body = {
      v: 1 as const,
      id: done.id,
      device: 'HN-CS-0001',
      entrySeq: this.offer.entry.seq,
      entryHash: entryHash(this.offer.entry as JournalEntry),
      bytes: done.bytes,
      sha256: done.sha256,
      holder: 'HN-station',
      role: 'station' as const,
      storedAt: new Date().toISOString(),
    };
    setImmediate(() => {
      this.emit('state', { id: done.id, status: 'have', offset: done.bytes });
      this.emit('receipt', signReceipt(body, gatewayKeys.privateKey));
    });
  }

  async sendJournal(): Promise<void> {}
}

function shareMemory(a: Buffer, b: Buffer): boolean {
  return (
    a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length
  );
}

test('the sender reuses chunk buffers only after their ack, and every chunk carries the right bytes', async (t) => {
  const bytes = randomBytes(37 * 1024 + 123); // not a multiple of the chunk size
  const entry = signEntry(
    { nextSeq: 0, prev: EMPTY_HEAD.prev },
    {
      device: 'HN-CS-0001',
      kind: 'segment',
      time: new Date(),
      body: { evidence: { file: 'E1-0.ts.enc', bytes: bytes.length, sha256: 'a'.repeat(64) } },
    },
    deviceKeys.privateKey,
  );
  const offer: Offer = {
    id: 'E1-0.ts.enc',
    entry,
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
  const link = new SlowLink(offer);
  const sender = new UploadSender({
    link,
    timers: { setTimeout, clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout), now: Date.now },
    chunkBytes: 1024,
    window: 4,
  });
  const reads: number[] = [];
  const receipt = await sender.sendItem(offer, async (offset, into) => {
    reads.push(into.length);
    return bytes.copy(into, 0, offset, offset + into.length);
  });
  t.is(receipt.receipt.sha256, offer.sha256);
  t.is(link.overlaps, 0, 'a buffer was handed out again while its chunk was in flight');
  t.is(link.maxInFlight, 4);
  t.is(reads.length, Math.ceil(bytes.length / 1024));
  t.is(reads.at(-1), bytes.length % 1024);
  const offsets = [...link.received.keys()].sort((a, b) => a - b);
  t.deepEqual(
    Buffer.concat(offsets.map((o) => link.received.get(o)!)),
    bytes,
    'the chunks put together are the item',
  );
});

/**
 * A receiver that holds nothing and answers every done for `bad` with the mismatch a damaged source
 * gets (status send, offset 0, UPLOAD_HASH_MISMATCH); any other item is receipted. After
 * `answers` mismatches it falls silent, so a sender that never gives up ends in a timeout.
 */
class MismatchLink extends EventEmitter implements UploadLink {
  readonly chunks = new Map<string, number>();
  readonly dones = new Map<string, number>();

  constructor(
    private readonly bad: string,
    private readonly answers = 10,
  ) {
    super();
  }

  async sendOffer(offer: Offer): Promise<void> {
    setImmediate(() => this.emit('state', { id: offer.id, status: 'send', offset: 0 }));
  }

  async sendChunk(id: string): Promise<void> {
    this.chunks.set(id, (this.chunks.get(id) ?? 0) + 1);
  }

  async sendDone(done: Done): Promise<void> {
    const n = (this.dones.get(done.id) ?? 0) + 1;
    this.dones.set(done.id, n);
    if (done.id !== this.bad) {
      const receipt = signReceipt(
        {
          v: 1,
          id: done.id,
          device: 'HN-CS-0001',
          entrySeq: 0,
          entryHash: 'e'.repeat(64),
          bytes: done.bytes,
          sha256: done.sha256,
          holder: 'HN-station',
          role: 'station',
          storedAt: new Date().toISOString(),
        },
        gatewayKeys.privateKey,
      );
      setImmediate(() => {
        this.emit('state', { id: done.id, status: 'have', offset: done.bytes });
        this.emit('receipt', receipt);
      });
      return;
    }
    if (n > this.answers) return;
    setImmediate(() =>
      this.emit('state', {
        id: done.id,
        status: 'send',
        offset: 0,
        code: 'UPLOAD_HASH_MISMATCH',
        reason: 'hash mismatch',
      }),
    );
  }

  async sendJournal(): Promise<void> {}
}

function offerFor(id: string, bytes: Buffer): Offer {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const entry = signEntry(
    { nextSeq: 0, prev: EMPTY_HEAD.prev },
    {
      device: 'HN-CS-0001',
      kind: 'segment',
      time: new Date(),
      body: { evidence: { file: id, bytes: bytes.length, sha256 } },
    },
    deviceKeys.privateKey,
  );
  return { id, entry, bytes: bytes.length, sha256 };
}

test('a receiver that always finds a mismatch gets one full resend, then the item is given up and the next one goes', async (t) => {
  const bytes = randomBytes(10 * 1024);
  const [bad, good] = [offerFor('E1-0.ts.enc', bytes), offerFor('E1-1.ts.enc', bytes)];
  const link = new MismatchLink(bad.id);
  const sender = new UploadSender({
    link,
    timers: { setTimeout, clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout), now: Date.now },
    chunkBytes: 1024,
    replyTimeoutMs: 200,
  });
  const read = async (offset: number, into: Buffer) => bytes.copy(into, 0, offset, offset + into.length);
  // One round: each item in turn, a failure of one not stopping the others.
  const outcomes: (string | null)[] = [];
  for (const offer of [bad, good]) {
    try {
      const receipt = await sender.sendItem(offer, read);
      outcomes.push(receipt.receipt.id === offer.id ? null : 'another receipt');
    } catch (error) {
      outcomes.push(isRecorderError(error) ? error.code : String(error));
    }
  }
  t.deepEqual(outcomes, ['UPLOAD_HASH_MISMATCH', null]);
  t.is(link.dones.get(bad.id), 2, 'the first send and one resend');
  t.is(link.chunks.get(bad.id), 20);
  t.is(link.chunks.get(good.id), 10);
});
