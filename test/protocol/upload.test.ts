import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { isRecorderError } from '../../protocol/errors.ts';
import { EMPTY_HEAD, signEntry, type JournalEntry, type JsonObject } from '../../protocol/journal-entry.ts';
import {
  checkReceipt,
  entryHash,
  parseOffer,
  sealedBy,
  sealsEvidence,
  signReceipt,
  uploadOrder,
  type ReceiptBody,
} from '../../protocol/upload.ts';

const device = generateKeyPairSync('ed25519');
const gateway = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('ed25519');
const sha = (c: string) => c.repeat(64);

function sealedEntry(seq: number, file: string): JournalEntry {
  return signEntry(
    { nextSeq: seq, prev: EMPTY_HEAD.prev },
    {
      device: 'HN-CS-0001',
      kind: 'segment',
      time: new Date(),
      body: { evidence: { file, bytes: 10, sha256: sha('a') } },
    },
    device.privateKey,
  );
}

function receiptFor(entry: JournalEntry, patch: Partial<ReceiptBody> = {}): ReceiptBody {
  return {
    v: 1,
    id: 'E1-0.ts.enc',
    device: 'HN-CS-0001',
    entrySeq: entry.seq,
    entryHash: entryHash(entry),
    bytes: 10,
    sha256: sha('a'),
    holder: 'HN-station',
    role: 'station',
    storedAt: new Date().toISOString(),
    ...patch,
  };
}

test('a receipt for exactly this item, signed by the gateway, is accepted', (t) => {
  const entry = sealedEntry(4, 'E1-0.ts.enc');
  const receipt = signReceipt(receiptFor(entry), gateway.privateKey);
  const body = checkReceipt(
    receipt,
    { id: 'E1-0.ts.enc', device: 'HN-CS-0001', entry, bytes: 10, sha256: sha('a') },
    gateway.publicKey,
  );
  t.is(body.entrySeq, 4);
});

test('a receipt replayed for another segment is refused', (t) => {
  const first = sealedEntry(4, 'E1-0.ts.enc');
  const second = sealedEntry(5, 'E1-1.ts.enc');
  const receipt = signReceipt(receiptFor(first), gateway.privateKey);
  const error = t.throws(() =>
    checkReceipt(
      receipt,
      { id: 'E1-1.ts.enc', device: 'HN-CS-0001', entry: second, bytes: 10, sha256: sha('b') },
      gateway.publicKey,
    ),
  );
  t.true(isRecorderError(error, 'RECEIPT_MISMATCH'));
  t.regex(error!.message, /id .*entry seq .*entry hash differs.*ciphertext hash differs/);
});

test('a receipt signed by another key, or altered after signing, is refused', (t) => {
  const entry = sealedEntry(4, 'E1-0.ts.enc');
  const expected = { id: 'E1-0.ts.enc', device: 'HN-CS-0001', entry, bytes: 10, sha256: sha('a') };
  const forged = signReceipt(receiptFor(entry), stranger.privateKey);
  t.true(
    isRecorderError(
      t.throws(() => checkReceipt(forged, expected, gateway.publicKey)),
      'RECEIPT_INVALID',
    ),
  );
  const altered = signReceipt(receiptFor(entry), gateway.privateKey);
  altered.receipt.bytes = 11;
  t.true(
    isRecorderError(
      t.throws(() => checkReceipt(altered, expected, gateway.publicKey)),
      'RECEIPT_INVALID',
    ),
  );
});

test('a receipt whose body has no canonical JSON (a lone surrogate) is refused as not signed', (t) => {
  const entry = sealedEntry(4, 'E1-0.ts.enc');
  const expected = { id: 'E1-0.ts.enc', device: 'HN-CS-0001', entry, bytes: 10, sha256: sha('a') };
  const receipt = {
    receipt: { ...receiptFor(entry), holder: 'station\ud800' },
    sig: Buffer.alloc(64, 1).toString('base64'),
  };
  t.true(
    isRecorderError(
      t.throws(() => checkReceipt(receipt, expected, gateway.publicKey)),
      'RECEIPT_INVALID',
    ),
  );
});

test('sealedBy: a segment names its file and plaintext, an orphan its file only, anything else nothing', (t) => {
  const entry = (kind: string, body: JsonObject) =>
    signEntry(
      { nextSeq: 0, prev: EMPTY_HEAD.prev },
      { device: 'D', kind, time: new Date(), body },
      device.privateKey,
    );
  const file = { file: 'E1-0.ts.rse', bytes: 10, sha256: sha('c') };
  t.deepEqual(sealedBy(entry('segment', { evidence: file, bytes: 4, sha256: sha('p') })), {
    ...file,
    plain: { bytes: 4, sha256: sha('p') },
  });
  t.deepEqual(sealedBy(entry('evidence-orphan', { ...file, note: 'x' })), { ...file, plain: null });
  t.deepEqual(
    sealedBy(entry('segment', { evidence: file })),
    { ...file, plain: null },
    'the center refuses it',
  );
  t.is(sealedBy(entry('photo', { evidence: { ...file, bytes: '10' } })), null);
  t.is(sealedBy(entry('evidence-orphan', { file: 'x', bytes: '10', sha256: sha('c') })), null);
  t.is(sealedBy(entry('mark', { ...file })), null);
  t.true(sealsEvidence('evidence-orphan'));
  t.false(sealsEvidence('evidence-unfinished'), 'an unfinished seal is kept on the device, not offered');
});

test('offers are validated with every problem named', (t) => {
  const error = t.throws(() => parseOffer({ id: '../etc/passwd', entry: {}, bytes: -1, sha256: 'x' }));
  t.true(isRecorderError(error, 'UPLOAD_BAD_MESSAGE'));
  for (const path of ['/id', '/entry', '/bytes', '/sha256']) t.true(error!.message.includes(path), path);
});

test('upload order: marked events first, then oldest first', (t) => {
  const order = uploadOrder([
    { id: 'c', sealedAt: 3, marked: false },
    { id: 'a', sealedAt: 1, marked: false },
    { id: 'm2', sealedAt: 9, marked: true },
    { id: 'm1', sealedAt: 5, marked: true },
  ]);
  t.deepEqual(
    order.map((i) => i.id),
    ['m1', 'm2', 'a', 'c'],
  );
});
