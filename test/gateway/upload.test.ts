import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { JournalWriter } from '../../device/journal-writer.ts';
import { Uploader, type PendingUpload, type UploaderOptions } from '../../device/uploader.ts';
import { EvidenceStore } from '../../gateway/evidence-store.ts';
import { UploadService } from '../../gateway/upload-service.ts';
import type { Identity } from '../../protocol/acl.ts';
import {
  MAX_SESSIONS_PER_DEVICE,
  UploadReceiver,
  type UploadAlert,
  type UploadReceiverOptions,
} from '../../gateway/upload-receiver.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { sha256Hex, type JournalEntry } from '../../protocol/journal-entry.ts';
import { checkJournalReceipt, entryHash, signReceipt } from '../../protocol/upload.ts';
import { TestWire, type WireFaults } from '../helpers/upload-wire.ts';
import { fakeSegments, queueOptions } from '../helpers/sealed-device.ts';
import { tempDir } from '../helpers/temp.ts';
import { waitFor } from '../helpers/wait.ts';

const DEVICE = 'HN-CS-0001';
const deviceKeys = generateKeyPairSync('ed25519');
const gatewayKeys = generateKeyPairSync('ed25519');

interface Rig {
  dir: string;
  evidenceDir: string;
  journal: JournalWriter;
  items: PendingUpload[];
  entries: Map<string, JournalEntry>;
  store: EvidenceStore;
  receiver: UploadReceiver;
  alerts: UploadAlert[];
  wire: TestWire;
  uploader: Uploader;
  uploaderOptions: UploaderOptions;
}

async function rig(
  t: ExecutionContext,
  sizes: number[],
  faults: WireFaults = {},
  signer: KeyObject = deviceKeys.privateKey,
): Promise<Rig> {
  const dir = tempDir(t);
  const evidenceDir = join(dir, 'evidence');
  mkdirSync(evidenceDir);
  const journal = await JournalWriter.open({
    path: join(dir, 'journal.jsonl'),
    device: DEVICE,
    privateKey: signer,
  });
  t.teardown(() => journal.close());
  const { items, entries } = await fakeSegments(journal, evidenceDir, sizes, { officer: 'O1' });
  const store = new EvidenceStore(join(dir, 'station'));
  t.teardown(() => store.close());
  const alerts: UploadAlert[] = [];
  const receiver = newReceiver(store, alerts);
  const wire = new TestWire(receiver, DEVICE, faults);
  const uploaderOptions: UploaderOptions = {
    link: wire,
    device: DEVICE,
    evidenceDir,
    gatewayKey: gatewayKeys.publicKey,
    ...queueOptions({ items, entries }),
    journal,
    chunkBytes: 4096,
    window: 4,
    replyTimeoutMs: 150,
    maxAttempts: 40,
  };
  const uploader = new Uploader(uploaderOptions);
  return {
    dir,
    evidenceDir,
    journal,
    items,
    entries,
    store,
    receiver,
    alerts,
    wire,
    uploader,
    uploaderOptions,
  };
}

function newReceiver(
  store: EvidenceStore,
  alerts: UploadAlert[],
  options: Partial<UploadReceiverOptions> = {},
): UploadReceiver {
  const receiver = new UploadReceiver({
    store,
    unit: 'HN',
    holder: 'HN-station',
    role: 'station',
    receiptKey: gatewayKeys.privateKey,
    deviceKey: (d) => (d === DEVICE ? deviceKeys.publicKey : null),
    // Datasync alongside the writes many times per item, so cuts and restarts meet it in flight.
    syncEveryBytes: 8192,
    ...options,
  });
  receiver.on('alert', (a: UploadAlert) => alerts.push(a));
  return receiver;
}

/** A real 256 KiB filesystem for a station (root can mount tmpfs; the tests that use it need it). */
function smallDisk(t: ExecutionContext): string {
  const station = join(tempDir(t), 'station-small');
  mkdirSync(station);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', station]);
  t.teardown(() => execFileSync('umount', ['-l', station]));
  return station;
}

function journalKinds(r: Rig): string[] {
  return readFileSync(join(r.dir, 'journal.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).kind);
}

test('items travel, are stored once, receipted, journaled, and only then deleted', async (t) => {
  const r = await rig(t, [50_000, 10, 0]);
  const result = await r.uploader.uploadAll();
  t.deepEqual(result.failed, []);
  t.is(result.receipted.length, 3);
  t.deepEqual(readdirSync(r.evidenceDir), []);
  t.is(r.store.list().length, 3);
  for (const item of r.store.list()) t.is(await r.store.checkObject(item), null);
  t.deepEqual(journalKinds(r).filter((k) => k === 'upload-receipt').length, 3);
});

test('the next item is offered before the previous one is receipted (one at a time with itemsInFlight 1); the round lists items in upload order', async (t) => {
  for (const itemsInFlight of [2, 1]) {
    const r = await rig(t, [40_000, 40_000, 40_000]);
    const order = r.items.map((item) => item.file);
    const events: string[] = [];
    const sendOffer = r.wire.sendOffer.bind(r.wire);
    r.wire.sendOffer = (offer) => {
      events.push(`offer ${offer.id}`);
      return sendOffer(offer);
    };
    r.wire.on('receipt', (receipt: { receipt: { id: string } }) =>
      events.push(`receipt ${receipt.receipt.id}`),
    );
    const result = await new Uploader({ ...r.uploaderOptions, itemsInFlight }).uploadAll();
    t.deepEqual(result.failed, []);
    t.deepEqual(result.receipted, order);
    t.deepEqual(
      events.filter((e) => e.startsWith('offer')),
      order.map((file) => `offer ${file}`),
      'offered in upload order',
    );
    const secondOffered = events.indexOf(`offer ${order[1]}`);
    const firstReceipted = events.indexOf(`receipt ${order[0]}`);
    t.true(firstReceipted >= 0 && secondOffered >= 0);
    if (itemsInFlight === 2) t.true(secondOffered < firstReceipted, events.join(', '));
    else t.true(secondOffered > firstReceipted, events.join(', '));
    t.is(r.store.list().length, 3);
    t.deepEqual(readdirSync(r.evidenceDir), []);
  }
});

test('offers leave in upload order even when a later item is ready to offer sooner', async (t) => {
  const r = await rig(t, [40_000, 40_000, 40_000]);
  const order = r.items.map((item) => item.file);
  const offers: string[] = [];
  const sendOffer = r.wire.sendOffer.bind(r.wire);
  r.wire.sendOffer = (offer) => {
    offers.push(offer.id);
    return sendOffer(offer);
  };
  // The first item's journal entry takes longer to find than the second's.
  const entryFor = r.uploaderOptions.entryFor;
  const uploader = new Uploader({
    ...r.uploaderOptions,
    entryFor: async (item) => {
      if (item.file === order[0]) await new Promise((resolve) => setTimeout(resolve, 100));
      return entryFor(item);
    },
  });
  const result = await uploader.uploadAll();
  t.deepEqual(result.failed, []);
  t.deepEqual(offers, order);
  t.is(r.store.list().length, 3);
});

test('50 seeded trials: a connection cut at a random point resumes with nothing lost or duplicated', async (t) => {
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let trial = 0; trial < 50; trial++) {
    const cutAt = 1 + Math.floor(random() * 30);
    const downFor = 1 + Math.floor(random() * 10);
    const r = await rig(t, [40_000 + Math.floor(random() * 20_000)], {
      onMessage: (n) => (n >= cutAt && n < cutAt + downFor ? 'drop' : 'pass'),
    });
    const original = readFileSync(join(r.evidenceDir, r.items[0]!.file));
    const result = await r.uploader.uploadAll();
    t.deepEqual(result.failed, [], `trial ${trial}`);
    const stored = r.store.list();
    t.is(stored.length, 1, `trial ${trial}`);
    t.deepEqual(readFileSync(r.store.objectPath(stored[0]!.sha256)), original, `trial ${trial}`);
    t.deepEqual(readdirSync(join(r.dir, 'station', 'incoming')), [], `trial ${trial}`);
    // A resume goes on from the receiver's hash of what it holds: a wrong one shows here.
    t.deepEqual(
      r.alerts.filter((a) => a.code === 'UPLOAD_HASH_MISMATCH'),
      [],
      `trial ${trial}`,
    );
  }
});

test('a corrupted chunk is rejected and the item resent', async (t) => {
  const r = await rig(t, [30_000], {
    onMessage: (n, kind) => (n === 3 && kind === 'chunk' ? 'corrupt' : 'pass'),
  });
  const result = await r.uploader.uploadAll();
  t.deepEqual(result.failed, []);
  t.true(r.alerts.some((a) => a.code === 'UPLOAD_HASH_MISMATCH'));
  t.is(await r.store.checkObject(r.store.list()[0]!), null);
});

test('a damaged local file is sent twice, reported EVIDENCE_MISMATCH and kept; the other items go, and it goes once whole', async (t) => {
  const r = await rig(t, [30_000, 20_000, 10_000]);
  const damaged = r.items[1]!;
  const path = join(r.evidenceDir, damaged.file);
  const flip = () => {
    const bytes = readFileSync(path);
    bytes[5000] = bytes[5000]! ^ 1;
    writeFileSync(path, bytes);
  };
  flip();
  const others = r.items.filter((i) => i !== damaged).map((i) => i.file);
  const result = await r.uploader.uploadAll();
  t.deepEqual(result.receipted, others);
  t.deepEqual(
    result.failed.map((f) => [f.file, f.code]),
    [[damaged.file, 'EVIDENCE_MISMATCH']],
  );
  t.regex(result.failed[0]!.message, /damaged on this device/);
  // One send and one resend in the round, not one per attempt (maxAttempts 40 here).
  t.is(r.alerts.filter((a) => a.code === 'UPLOAD_HASH_MISMATCH').length, 2);
  t.deepEqual(
    r.items.map((i) => i.file),
    [damaged.file],
    'still pending',
  );
  t.true(existsSync(path), 'never deleted');
  t.is(r.store.get(DEVICE, damaged.file), null);

  // The next round offers it again; once the file is whole (a transient read fault), it goes.
  const again = await r.uploader.uploadAll();
  t.deepEqual(
    again.failed.map((f) => f.code),
    ['EVIDENCE_MISMATCH'],
  );
  // The damage is journaled once (R18), naming what the file hashes to and what it should.
  const journaled = readFileSync(r.journal.path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as JournalEntry)
    .filter((e) => e.kind === 'evidence-damaged');
  t.is(journaled.length, 1);
  t.like(journaled[0]!.body, {
    file: damaged.file,
    seq: damaged.seq,
    bytes: damaged.bytes,
    expectedBytes: damaged.bytes,
    expectedSha256: damaged.sha256,
    sha256: sha256Hex(readFileSync(path)),
  });
  flip();
  const whole = await r.uploader.uploadAll();
  t.deepEqual(whole, { receipted: [damaged.file], failed: [] });
  t.false(existsSync(path));
});

test('a link that corrupts every copy: UPLOAD_HASH_MISMATCH after one resend, the item kept, and it goes once the link is sound', async (t) => {
  let corrupting = true;
  const r = await rig(t, [20_000], {
    onMessage: (_n, kind) => (corrupting && kind === 'chunk' ? 'corrupt' : 'pass'),
  });
  const item = r.items[0]!;
  const result = await r.uploader.uploadAll();
  t.deepEqual(result.receipted, []);
  t.deepEqual(
    result.failed.map((f) => [f.file, f.code]),
    [[item.file, 'UPLOAD_HASH_MISMATCH']],
  );
  t.is(r.alerts.filter((a) => a.code === 'UPLOAD_HASH_MISMATCH').length, 2);
  t.is(r.items.length, 1);
  t.true(existsSync(join(r.evidenceDir, item.file)));
  corrupting = false;
  const next = await r.uploader.uploadAll();
  t.deepEqual(next, { receipted: [item.file], failed: [] });
});

test('the gateway restarted mid-upload resumes from what it holds; partial data never enters the store', async (t) => {
  const alerts: UploadAlert[] = [];
  let restarted = false;
  const r = await rig(t, [60_000], {
    onMessage: (n) => {
      if (n === 6 && !restarted) {
        restarted = true;
        t.is(r.store.list().length, 0, 'nothing stored before done');
        r.wire.receiver = newReceiver(r.store, alerts); // a new gateway process, same disk
        return 'drop';
      }
      return 'pass';
    },
  });
  const result = await r.uploader.uploadAll();
  t.deepEqual(result.failed, []);
  t.true(restarted);
  t.is(r.store.list().length, 1);
});

test('a forged offer (entry signed by another key) is refused and alerted; the device keeps its copy', async (t) => {
  const r = await rig(t, [1000], {}, generateKeyPairSync('ed25519').privateKey);
  const result = await r.uploader.uploadAll();
  t.is(result.failed.length, 1);
  t.is(result.failed[0]!.code, 'UPLOAD_REFUSED');
  t.true(r.alerts.some((a) => a.code === 'UPLOAD_FORGED'));
  t.true(existsSync(join(r.evidenceDir, 'E1-0.ts.enc')));
  t.is(r.store.list().length, 0);
});

test('a receipt replayed for another segment deletes nothing', async (t) => {
  const r = await rig(t, [1000, 2000]);
  // Store the first and keep its genuine receipt.
  const first = await r.uploader.uploadOne(r.items[0]!);
  // A gateway that answers every later offer with that old receipt.
  r.wire.sendOffer = async (offer) => {
    setImmediate(() => {
      r.wire.emit('state', { id: offer.id, status: 'have', offset: offer.bytes });
      r.wire.emit('receipt', { ...first, receipt: { ...first.receipt, id: offer.id } });
    });
  };
  const second = r.items[0]!;
  const error = await t.throwsAsync(r.uploader.uploadOne(second));
  t.true(isRecorderError(error, 'RECEIPT_INVALID'));
  t.true(existsSync(join(r.evidenceDir, second.file)));
  // The same, re-signed by the real gateway key for the wrong item content.
  r.wire.sendOffer = async (offer) => {
    setImmediate(() => {
      r.wire.emit('state', { id: offer.id, status: 'have', offset: offer.bytes });
      r.wire.emit('receipt', signReceipt({ ...first.receipt, id: offer.id }, gatewayKeys.privateKey));
    });
  };
  t.true(isRecorderError(await t.throwsAsync(r.uploader.uploadOne(second)), 'RECEIPT_MISMATCH'));
  t.true(existsSync(join(r.evidenceDir, second.file)));
  t.is(journalKinds(r).filter((k) => k === 'upload-receipt').length, 1);
  // Each refusal is journaled once: the same wrong receipt again (Ed25519 signs deterministically)
  // adds no line.
  t.is(journalKinds(r).filter((k) => k === 'receipt-refused').length, 2);
  t.true(isRecorderError(await t.throwsAsync(r.uploader.uploadOne(second)), 'RECEIPT_MISMATCH'));
  t.is(journalKinds(r).filter((k) => k === 'receipt-refused').length, 2);
  t.true(existsSync(join(r.evidenceDir, second.file)));
});

test('a receipt with a lone surrogate is refused and its refusal journaled', async (t) => {
  const r = await rig(t, [1000]);
  const item = r.items[0]!;
  r.wire.sendOffer = async (offer) => {
    setImmediate(() => {
      r.wire.emit('state', { id: offer.id, status: 'have', offset: offer.bytes });
      const body = {
        v: 1,
        id: offer.id,
        device: DEVICE,
        entrySeq: offer.entry.seq,
        entryHash: entryHash(offer.entry as JournalEntry),
      };
      r.wire.emit('receipt', {
        receipt: {
          ...body,
          bytes: offer.bytes,
          sha256: offer.sha256,
          holder: 'HN-station\ud800',
          role: 'station',
          storedAt: 'x',
        },
        sig: Buffer.alloc(64, 1).toString('base64'),
      });
    });
  };
  t.true(isRecorderError(await t.throwsAsync(r.uploader.uploadOne(item)), 'RECEIPT_INVALID'));
  t.true(existsSync(join(r.evidenceDir, item.file)));
  t.deepEqual(
    journalKinds(r).filter((k) => k === 'receipt-refused'),
    ['receipt-refused'],
  );
});

test('re-offering a receipted item returns the same receipt and stores nothing twice', async (t) => {
  const r = await rig(t, [5000]);
  const item = { ...r.items[0]! };
  const data = readFileSync(join(r.evidenceDir, item.file));
  const first = await r.uploader.uploadOne(item);
  writeFileSync(join(r.evidenceDir, item.file), data);
  r.items.push(item);
  const second = await r.uploader.uploadOne(item);
  t.deepEqual(second, first);
  t.is(r.store.list().length, 1);
});

test("the station's disk full: the device keeps its copy and an alert is raised", async (t) => {
  const station = smallDisk(t);
  const r = await rig(t, [600_000]);
  r.store.close();
  const store = new EvidenceStore(station);
  t.teardown(() => store.close());
  r.wire.receiver = newReceiver(store, r.alerts);
  const result = await r.uploader.uploadAll();
  t.is(result.failed.length, 1);
  t.is(result.failed[0]!.code, 'UPLOAD_REFUSED');
  t.regex(result.failed[0]!.message, /STORAGE_FULL/);
  t.true(r.alerts.some((a) => a.code === 'STORAGE_FULL'));
  t.true(existsSync(join(r.evidenceDir, 'E1-0.ts.enc')));
  t.is(store.list().length, 0);
  // What the small disk took is a clean prefix of the item, cut back to the last whole write.
  const [part] = readdirSync(join(station, 'incoming'));
  const held = readFileSync(join(station, 'incoming', part!));
  t.true(held.length > 0 && held.length < 600_000);
  t.true(held.equals(readFileSync(join(r.evidenceDir, 'E1-0.ts.enc')).subarray(0, held.length)));
  // Space is made (the filesystem grows): the next round resumes from that prefix, in the same
  // receiver, whose running hash had taken bytes the disk refused, and stores the item.
  execFileSync('mount', ['-o', 'remount,size=4m', station]);
  const again = await r.uploader.uploadAll();
  t.deepEqual(again.failed, []);
  t.is(store.list().length, 1);
  t.false(r.alerts.some((a) => a.code === 'UPLOAD_HASH_MISMATCH'));
  t.false(existsSync(join(r.evidenceDir, 'E1-0.ts.enc')));
});

test('a device that sends on after a refused write without offering again: the file is hashed again at done, and stored', async (t) => {
  const station = smallDisk(t);
  const r = await rig(t, [600_000]);
  const store = new EvidenceStore(station);
  t.teardown(() => store.close());
  const alerts: UploadAlert[] = [];
  const receiver = newReceiver(store, alerts);
  const item = r.items[0]!;
  const bytes = readFileSync(join(r.evidenceDir, item.file));
  const offer = { id: item.file, entry: r.entries.get(item.file)!, bytes: item.bytes, sha256: item.sha256 };
  t.is((await receiver.offer(DEVICE, offer)).state?.status, 'send');
  for (let at = 0; at < bytes.length; at += 50_000)
    await receiver.chunk(DEVICE, item.file, at, bytes.subarray(at, at + 50_000));
  const refused = (await receiver.done(DEVICE, { id: item.file, bytes: item.bytes, sha256: item.sha256 }))
    .state!;
  t.is(refused.status, 'refused');
  t.is(refused.code, 'STORAGE_FULL');
  t.true(refused.offset > 0 && refused.offset < bytes.length);
  // The receiver had hashed every chunk it accepted, also those the disk then refused.
  execFileSync('mount', ['-o', 'remount,size=4m', station]);
  for (let at = refused.offset; at < bytes.length; at += 50_000)
    t.is(
      await receiver.chunk(DEVICE, item.file, at, bytes.subarray(at, Math.min(at + 50_000, bytes.length))),
      null,
    );
  const reply = await receiver.done(DEVICE, { id: item.file, bytes: item.bytes, sha256: item.sha256 });
  t.is(reply.state?.status, 'have');
  t.truthy(reply.receipt);
  t.false(alerts.some((a) => a.code === 'UPLOAD_HASH_MISMATCH'));
  t.is(await store.checkObject(store.list()[0]!), null);
  await receiver.close();
});

test('the journal reaches the station whole, in batches, resuming after losses; a forged line is refused', async (t) => {
  const r = await rig(t, [100, 200], {
    onMessage: (n, kind) => (kind === 'journal' && n % 3 === 0 ? 'drop' : 'pass'),
  });
  for (let i = 0; i < 25; i++) await r.journal.append('event', { i });
  const uploader = new Uploader({
    ...r.uploaderOptions,
    journalPath: join(r.dir, 'journal.jsonl'),
    journalBatchLines: 4,
  });
  const head = await uploader.syncJournal();
  const local = readFileSync(join(r.dir, 'journal.jsonl'), 'utf8').trim().split('\n');
  t.is(head!.seq, local.length - 1);
  t.deepEqual(r.store.journalLines(DEVICE), local);
  // Already held: one round trip says so.
  t.deepEqual(await uploader.syncJournal(), head);
  // An answer with a head carries the station's signed receipt for the chain up to it.
  const state = await r.receiver.journal(DEVICE, { from: 0, lines: [local[0]] });
  const body = checkJournalReceipt(
    state.receipt!,
    { device: DEVICE, ...head! },
    r.uploaderOptions.gatewayKey,
  );
  t.like(body, { kind: 'journal', role: 'station', device: DEVICE, seq: head!.seq });

  // A line that does not continue the chain is refused and alerted, and nothing of it is kept.
  await r.journal.append('event', { i: 99 });
  const text = readFileSync(join(r.dir, 'journal.jsonl'), 'utf8');
  writeFileSync(join(r.dir, 'journal.jsonl'), text.replace('"i":99', '"i":98'));
  const error = await t.throwsAsync(uploader.syncJournal());
  t.true(isRecorderError(error, 'UPLOAD_REFUSED'));
  t.true(r.alerts.some((a) => a.code === 'JOURNAL_BAD_SIGNATURE'));
  t.is(r.store.journalLines(DEVICE).length, local.length);
});

test("journal lines not yet fsync'd by the writer are not sent: a power cut could still take them", async (t) => {
  const r = await rig(t, [100]);
  for (let i = 0; i < 5; i++) await r.journal.append('event', { i });
  // The writer's head is where its last fsync ended; lines past it are in the file but not durable.
  let head = r.journal.head;
  const journal = {
    append: r.journal.append.bind(r.journal),
    get head() {
      return head;
    },
  };
  for (let i = 5; i < 8; i++) await r.journal.append('event', { i });
  const uploader = new Uploader({ ...r.uploaderOptions, journal, journalPath: join(r.dir, 'journal.jsonl') });
  const local = readFileSync(join(r.dir, 'journal.jsonl'), 'utf8').trim().split('\n');
  t.is((await uploader.syncJournal())!.seq, head.nextSeq - 1);
  t.deepEqual(r.store.journalLines(DEVICE), local.slice(0, head.nextSeq));
  head = r.journal.head;
  t.is((await uploader.syncJournal())!.seq, local.length - 1);
  t.deepEqual(r.store.journalLines(DEVICE), local);
});

test('killed between moving the object into the store and indexing it: the item is sent again, indexed once, incoming/ left empty', async (t) => {
  const r = await rig(t, [50_000]);
  const item = r.items[0]!;
  // What EvidenceStore.put leaves when the process dies after its rename and before its INSERT:
  // the complete, read-only object in objects/, no index row, no receipt given.
  const object = r.store.objectPath(item.sha256);
  mkdirSync(dirname(object), { recursive: true });
  copyFileSync(join(r.evidenceDir, item.file), object);
  chmodSync(object, 0o444);
  const result = await r.uploader.uploadAll();
  t.deepEqual(result.failed, []);
  t.is(r.store.list().length, 1);
  t.is(await r.store.checkObject(r.store.list()[0]!), null);
  t.deepEqual(readdirSync(join(r.dir, 'station', 'incoming')), []);

  // The same, but the object left behind was damaged since: the good bytes just received replace it.
  const r2 = await rig(t, [20_000]);
  const item2 = r2.items[0]!;
  const object2 = r2.store.objectPath(item2.sha256);
  mkdirSync(dirname(object2), { recursive: true });
  writeFileSync(object2, randomBytes(item2.bytes), { mode: 0o444 });
  t.deepEqual((await r2.uploader.uploadAll()).failed, []);
  t.is(await r2.store.checkObject(r2.store.list()[0]!), null);
  t.deepEqual(readdirSync(join(r2.dir, 'station', 'incoming')), []);
});

test('a device whose id and item id join to another device and item writes nothing into that upload', async (t) => {
  const dir = tempDir(t);
  const store = new EvidenceStore(join(dir, 'station'));
  t.teardown(() => store.close());
  // HN-CS-0001--x's E1-0.ts.enc and HN-CS-0001's x--E1-0.ts.enc were both incoming/HN-CS-0001--x--E1-0.ts.enc.part.
  const victim = 'HN-CS-0001--x';
  const other = 'HN-CS-0001';
  const keys = new Map([victim, other].map((d) => [d, generateKeyPairSync('ed25519')]));
  const alerts: UploadAlert[] = [];
  const receiver = newReceiver(store, alerts, {
    deviceKey: (d) => keys.get(d)?.publicKey ?? null,
    syncEveryBytes: 32 * 1024 * 1024,
  });
  t.teardown(() => receiver.close());
  const journals = new Map<string, JournalWriter>();
  for (const [device, { privateKey }] of keys) {
    const journal = await JournalWriter.open({ path: join(dir, `${device}.jsonl`), device, privateKey });
    t.teardown(() => journal.close());
    journals.set(device, journal);
  }
  const offerOf = async (device: string, id: string, data: Buffer) => {
    const sha256 = createHash('sha256').update(data).digest('hex');
    const entry = await journals
      .get(device)!
      .append('segment', { evidence: { file: id, bytes: data.length, sha256 } });
    return { id, entry, bytes: data.length, sha256 };
  };
  const data = randomBytes(20_000);
  const offer = await offerOf(victim, 'E1-0.ts.enc', data);
  t.is((await receiver.offer(victim, offer)).state?.status, 'send');
  for (let at = 0; at < 8192; at += 4096)
    t.is(await receiver.chunk(victim, offer.id, at, data.subarray(at, at + 4096)), null);

  // The other device offers a short item (a longer file was cut back to 0), then writes its own bytes.
  const garbage = Buffer.alloc(8192, 0x41);
  t.like((await receiver.offer(other, await offerOf(other, 'x--E1-0.ts.enc', Buffer.alloc(1)))).state, {
    status: 'send',
    offset: 0,
  });
  t.like((await receiver.offer(other, await offerOf(other, 'x--E1-0.ts.enc', garbage))).state, {
    status: 'send',
    offset: 0,
  });
  t.is(await receiver.chunk(other, 'x--E1-0.ts.enc', 0, garbage), null);

  for (let at = 8192; at < data.length; at += 4096)
    t.is(await receiver.chunk(victim, offer.id, at, data.subarray(at, at + 4096)), null);
  const reply = await receiver.done(victim, { id: offer.id, bytes: offer.bytes, sha256: offer.sha256 });
  t.is(reply.state?.status, 'have');
  t.truthy(reply.receipt);
  const stored = store.get(victim, offer.id)!;
  t.is(await store.checkObject(stored), null);
  t.true(readFileSync(store.objectPath(stored.sha256)).equals(data));
  t.deepEqual(alerts, []);
  // The other device's upload is its own, and completes too.
  const theirs = await receiver.done(other, {
    id: 'x--E1-0.ts.enc',
    bytes: garbage.length,
    sha256: createHash('sha256').update(garbage).digest('hex'),
  });
  t.is(theirs.state?.status, 'have');
  t.is(await store.checkObject(store.get(other, 'x--E1-0.ts.enc')!), null);
});

test('an incoming file of the naming before 2026-12-05 is not resumed: the item is sent from 0, the leftover blocks nothing', async (t) => {
  const r = await rig(t, [50_000]);
  const item = r.items[0]!;
  const old = join(r.dir, 'station', 'incoming', `${DEVICE}--${item.file}.part`);
  writeFileSync(old, readFileSync(join(r.evidenceDir, item.file)).subarray(0, 20_000));
  const offer = { id: item.file, entry: r.entries.get(item.file)!, bytes: item.bytes, sha256: item.sha256 };
  t.like((await r.receiver.offer(DEVICE, offer)).state, { status: 'send', offset: 0 });
  t.deepEqual((await r.uploader.uploadAll()).failed, []);
  t.is(await r.store.checkObject(r.store.list()[0]!), null);
  t.deepEqual(readdirSync(join(r.dir, 'station', 'incoming')), [`${DEVICE}--${item.file}.part`]);
});

/** Opens incoming files whose next `faults.datasync` datasyncs and `faults.writev` writes fail with EIO. */
function failingDisk(faults: { datasync: number; writev: number }): (path: string) => Promise<FileHandle> {
  return async (path) => {
    const handle = await open(path, 'a');
    return new Proxy(handle, {
      get(target, name) {
        if ((name === 'datasync' || name === 'writev') && faults[name] > 0) {
          return () => {
            faults[name]--;
            return Promise.reject(Object.assign(new Error(`EIO: i/o error, ${name}`), { code: 'EIO' }));
          };
        }
        const value: unknown = Reflect.get(target, name, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  };
}

/** One item's messages straight to a receiver: offer, 16 KiB chunks in [from, to), done. */
function itemMessages(r: Rig, receiver: UploadReceiver) {
  const item = r.items[0]!;
  const bytes = readFileSync(join(r.evidenceDir, item.file));
  const offer = { id: item.file, entry: r.entries.get(item.file)!, bytes: item.bytes, sha256: item.sha256 };
  return {
    item,
    offer: () => receiver.offer(DEVICE, JSON.parse(JSON.stringify(offer))),
    chunks: async (from: number, to = bytes.length) => {
      const states = [];
      for (let at = from; at < to; at += 16_384)
        states.push(await receiver.chunk(DEVICE, item.file, at, bytes.subarray(at, at + 16_384)));
      return states;
    },
    done: () => receiver.done(DEVICE, { id: item.file, bytes: item.bytes, sha256: item.sha256 }),
  };
}

/** Sends the item's bytes from `from`, says done: it is stored with a receipt, and its object checks. */
async function storesWhole(t: ExecutionContext, r: Rig, m: ReturnType<typeof itemMessages>, from = 0) {
  t.true((await m.chunks(from)).every((s) => s === null));
  const reply = await m.done();
  t.is(reply.state?.status, 'have');
  t.truthy(reply.receipt);
  t.is(await r.store.checkObject(r.store.get(DEVICE, m.item.file)!), null);
}

for (const where of ['done', 'travel'] as const) {
  test(`a datasync that fails (${where === 'done' ? 'at done' : 'while the item travels'}) is alerted, and the item is sent again from 0 before any receipt`, async (t) => {
    const r = await rig(t, [100_000]);
    const faults = { datasync: 0, writev: 0 };
    const alerts: UploadAlert[] = [];
    const receiver = newReceiver(r.store, alerts, {
      syncEveryBytes: where === 'travel' ? 32_768 : 1 << 30,
      openIncoming: failingDisk(faults),
    });
    t.teardown(() => receiver.close());
    const m = itemMessages(r, receiver);
    const incoming = r.store.incomingPath(DEVICE, m.item.file);
    t.like((await m.offer()).state, { status: 'send', offset: 0 });
    if (where === 'travel') faults.datasync = 1;
    // A chunk is acknowledged once queued: the failure shows in a later chunk's answer, or at done.
    for (const state of await m.chunks(0))
      if (state) t.like(state, { status: 'refused', code: 'UPLOAD_WRITE_FAILED', offset: 0 });
    if (where === 'done') faults.datasync = 1;
    const refused = await m.done();
    t.like(refused.state, { status: 'refused', code: 'UPLOAD_WRITE_FAILED', offset: 0 });
    t.is(refused.receipt, undefined);
    t.is(faults.datasync, 0);
    t.deepEqual(
      alerts.map((a) => a.code),
      ['UPLOAD_WRITE_FAILED'],
    );
    t.false(existsSync(incoming), 'the file is not trusted after a failed datasync');
    // A second datasync would "succeed": the next done and a re-offer ask for every byte again.
    t.like((await m.done()).state, { status: 'send', offset: 0 });
    t.like((await m.offer()).state, { status: 'send', offset: 0 });
    // So does a gateway restarted on the same store.
    await receiver.close();
    const again = newReceiver(r.store, alerts);
    const m2 = itemMessages(r, again);
    t.like((await m2.offer()).state, { status: 'send', offset: 0 });
    await storesWhole(t, r, m2);
    await again.close();
  });
}

test('a write that fails (not for a full disk) is alerted, and the item is sent again from 0 into a fresh file', async (t) => {
  const r = await rig(t, [100_000]);
  const faults = { datasync: 0, writev: 0 };
  const alerts: UploadAlert[] = [];
  const receiver = newReceiver(r.store, alerts, {
    syncEveryBytes: 32 * 1024 * 1024,
    openIncoming: failingDisk(faults),
  });
  t.teardown(() => receiver.close());
  const m = itemMessages(r, receiver);
  t.like((await m.offer()).state, { status: 'send', offset: 0 });
  await m.chunks(0, 16_384 * 6);
  // The first 96 KiB are in the file (the receiver closed it); the next write fails.
  await receiver.close();
  faults.writev = 1;
  t.like((await m.offer()).state, { status: 'send', offset: 16_384 * 6 });
  await m.chunks(16_384 * 6);
  t.like((await m.done()).state, { status: 'refused', code: 'UPLOAD_WRITE_FAILED', offset: 0 });
  t.deepEqual(
    alerts.map((a) => a.code),
    ['UPLOAD_WRITE_FAILED'],
  );
  await storesWhole(t, r, m);
});

test("the store's fsync failing at done: no receipt on a second try, the item is sent again from 0", async (t) => {
  const r = await rig(t, [50_000]);
  let failPut = 1;
  class FailingStore extends EvidenceStore {
    override put(...args: Parameters<EvidenceStore['put']>): ReturnType<EvidenceStore['put']> {
      if (failPut-- > 0)
        return Promise.reject(
          Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', syscall: 'fsync' }),
        );
      return super.put(...args);
    }
  }
  r.store.close();
  const store = new FailingStore(join(r.dir, 'station'));
  t.teardown(() => store.close());
  const alerts: UploadAlert[] = [];
  const receiver = newReceiver(store, alerts);
  t.teardown(() => receiver.close());
  const m = itemMessages(r, receiver);
  t.like((await m.offer()).state, { status: 'send', offset: 0 });
  await m.chunks(0);
  t.like((await m.done()).state, { status: 'refused', code: 'STORE_FAILED', offset: 0 });
  t.true(alerts.some((a) => a.code === 'STORE_FAILED'));
  t.like((await m.done()).state, { status: 'send', offset: 0 });
  t.like((await m.offer()).state, { status: 'send', offset: 0 });
  await m.chunks(0);
  t.truthy((await m.done()).receipt);
  t.is(await store.checkObject(store.get(DEVICE, m.item.file)!), null);
});

test('a re-offer waiting behind a dropped session takes it over: a datasync of it failing later restarts the item from 0', async (t) => {
  const r = await rig(t, [5_000_000]);
  let openWrites!: () => void;
  let failSync!: () => void;
  const writes = new Promise<void>((resolve) => (openWrites = resolve));
  const sync = new Promise<void>((resolve) => (failSync = resolve));
  let syncs = 0;
  const alerts: UploadAlert[] = [];
  const receiver = newReceiver(r.store, alerts, {
    syncEveryBytes: 1 << 20,
    openIncoming: async (path) => {
      const handle = await open(path, 'a');
      return new Proxy(handle, {
        get(target, name) {
          if (name === 'writev')
            return async (buffers: Buffer[]) => {
              await writes;
              return target.writev(buffers);
            };
          if (name === 'datasync' && syncs++ === 0)
            return async () => {
              await sync;
              throw Object.assign(new Error('EIO: i/o error, datasync'), { code: 'EIO' });
            };
          const value: unknown = Reflect.get(target, name, target);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
  });
  t.teardown(() => receiver.close());
  const m = itemMessages(r, receiver);
  t.like((await m.offer()).state, { status: 'send', offset: 0 });
  // The disk stalls: 4 MiB are acknowledged while queued, the next chunk waits for the writes.
  t.true((await m.chunks(0, 4 << 20)).every((s) => s === null));
  const stalled = m.chunks(4 << 20, (4 << 20) + 16_384);
  // The device, hearing nothing, offers again: queued behind the stalled chunk.
  const reoffer = m.offer();
  // Its other items' offers drop this item's session (the least recently active).
  const sha256 = createHash('sha256').update('x').digest('hex');
  for (let i = 0; i < MAX_SESSIONS_PER_DEVICE; i++) {
    const id = `F${i}.ts.enc`;
    const entry = await r.journal.append('segment', { evidence: { file: id, bytes: 1, sha256 } });
    await receiver.offer(DEVICE, { id, entry, bytes: 1, sha256 });
  }
  openWrites();
  await stalled;
  // The re-offer waits for the dropped session's datasync rather than resume from its file.
  const early = await Promise.race([
    reoffer,
    new Promise((resolve) => setTimeout(() => resolve('waiting'), 300)),
  ]);
  t.is(early, 'waiting');
  failSync();
  t.like((await reoffer).state, { status: 'send', offset: 0 });
  t.deepEqual(
    alerts.map((a) => a.code),
    ['UPLOAD_WRITE_FAILED'],
  );
  await storesWhole(t, r, m);
});

test('offers never followed by their bytes: a device holds at most MAX_SESSIONS_PER_DEVICE sessions, and an item whose session was dropped resumes from its file', async (t) => {
  const r = await rig(t, [100_000]);
  const alerts: UploadAlert[] = [];
  const receiver = newReceiver(r.store, alerts);
  t.teardown(() => receiver.close());
  const m = itemMessages(r, receiver);
  const incoming = r.store.incomingPath(DEVICE, m.item.file);
  t.like((await m.offer()).state, { status: 'send', offset: 0 });
  t.true((await m.chunks(0, 32_768)).every((s) => s === null));
  const sha256 = createHash('sha256').update('x').digest('hex');
  for (let i = 0; i < 3 * MAX_SESSIONS_PER_DEVICE; i++) {
    const id = `F${i}.ts.enc`;
    const entry = await r.journal.append('segment', { evidence: { file: id, bytes: 1, sha256 } });
    t.like((await receiver.offer(DEVICE, { id, entry, bytes: 1, sha256 })).state, { status: 'send' });
    t.true(receiver.sessionCount(DEVICE) <= MAX_SESSIONS_PER_DEVICE);
  }
  t.is(receiver.sessionCount(DEVICE), MAX_SESSIONS_PER_DEVICE);
  t.is(receiver.sessionCount(), MAX_SESSIONS_PER_DEVICE);
  // The first item's session, the least recently active, was dropped and its file closed.
  t.like(await receiver.chunk(DEVICE, m.item.file, 32_768, Buffer.alloc(16_384)), {
    status: 'refused',
    code: 'UPLOAD_NO_OFFER',
  });
  const openOn = (path: string) =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false;
      }
    }).length;
  await waitFor(() => openOn(incoming) === 0, 5000, 'the dropped session to close its file');
  // Offered again, it resumes from what its file holds, and is stored with its own bytes.
  t.like((await m.offer()).state, { status: 'send', offset: 32_768 });
  await storesWhole(t, r, m, 32_768);
  t.deepEqual(alerts, []);
  t.is(receiver.sessionCount(DEVICE), MAX_SESSIONS_PER_DEVICE - 1);
});

/** A station's UploadService on its own store beside `r`, its replies, fleet alerts and log kept. */
function uploadService(t: ExecutionContext, r: Rig) {
  const dir = join(r.dir, 'service');
  mkdirSync(dir);
  const keyPath = join(dir, 'receipt.key.pem');
  writeFileSync(keyPath, gatewayKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const replies: { topic: string; value: { code?: string; status?: string; id?: string } }[] = [];
  const fleet: string[] = [];
  const logs: string[] = [];
  const service = new UploadService({
    unit: 'HN',
    holder: 'HN-station',
    evidence: { dir: join(dir, 'evidence'), receiptKey: keyPath, role: 'station', maxItemBytes: 1 << 30 },
    log: (level, msg) => logs.push(`${level} ${msg}`),
    publish: async (topic, text) => {
      replies.push({ topic, value: JSON.parse(text) });
    },
    deviceKey: (d) => (d === DEVICE ? deviceKeys.publicKey : null),
    onAlert: (device, alert) => fleet.push(`${device} ${alert}`),
  });
  t.teardown(() => service.close());
  return { service, dir: join(dir, 'evidence'), replies, fleet, logs };
}

test('a message the station cannot handle (its store broken) is answered refused with a code and alerted, not left to time out', async (t) => {
  const r = await rig(t, [5_000]);
  const { service, dir, replies, fleet, logs } = uploadService(t, r);
  // incoming/ replaced by a file: every incoming path is now ENOTDIR.
  rmSync(join(dir, 'incoming'), { recursive: true });
  writeFileSync(join(dir, 'incoming'), '');
  const item = r.items[0]!;
  const offer = { id: item.file, entry: r.entries.get(item.file)!, bytes: item.bytes, sha256: item.sha256 };
  const topic = { name: 'uploadOffer' as const, unit: 'HN', device: DEVICE };
  await service.handle({} as Identity, topic, JSON.parse(JSON.stringify(offer)));
  t.is(replies.length, 1);
  t.true(replies[0]!.topic.endsWith('/upload/state'), replies[0]!.topic);
  t.like(replies[0]!.value, { id: item.file, status: 'refused', code: 'STORE_FAILED' });
  t.deepEqual(fleet, [`${DEVICE} station-storage`]);
  t.true(logs.some((l) => l.startsWith('warn upload alert')));
});

test('a journal that says the device keeps evidence it could not keep whole raises evidence-damaged for the fleet', async (t) => {
  const r = await rig(t, [5_000]);
  await r.journal.append('evidence-unfinished', {
    file: 'EV_00004.ts.tmp-4242-deadbeef.unfinished',
    bytes: 5000,
    sha256: 'a'.repeat(64),
    note: 'kept as found',
  });
  await r.journal.append('evidence-damaged', {
    file: r.items[0]!.file,
    seq: r.items[0]!.seq,
    bytes: 5000,
    sha256: 'b'.repeat(64),
    expectedBytes: 5000,
    expectedSha256: r.items[0]!.sha256,
  });
  const uploader = new Uploader({ ...r.uploaderOptions, journalPath: join(r.dir, 'journal.jsonl') });
  await uploader.syncJournal();
  t.deepEqual(
    r.alerts.map((a) => [a.code, a.id]),
    [
      ['DEVICE_EVIDENCE_DAMAGED', 'EV_00004.ts.tmp-4242-deadbeef.unfinished'],
      ['DEVICE_EVIDENCE_DAMAGED', r.items[0]!.file],
    ],
  );
  t.regex(r.alerts[0]!.message, /unfinished seal after a power cut/);
  // Held lines do not alert again.
  await uploader.syncJournal();
  t.is(r.alerts.length, 2);
  // Through the station's upload service, the fleet sees evidence-damaged.
  const { service, fleet } = uploadService(t, r);
  const lines = readFileSync(join(r.dir, 'journal.jsonl'), 'utf8').trimEnd().split('\n');
  await service.handle(
    {} as Identity,
    { name: 'uploadJournal', unit: 'HN', device: DEVICE },
    { from: 0, lines },
  );
  t.deepEqual(fleet, [`${DEVICE} evidence-damaged`, `${DEVICE} evidence-damaged`]);
});
