/**
 * The upload protocol (DESIGN.md "Uploads"), independent of the transport:
 *
 *   device  → offer   {id, entry (the signed journal entry of the item), bytes, sha256}
 *   gateway → state   {id, status: send|have|refused, offset, reason?}
 *   device  → data    raw bytes at an offset (QoS 1, a window in flight)
 *   device  → done    {id, bytes, sha256}
 *   gateway → receipt {receipt, sig} signed with the gateway's own Ed25519 key
 *
 * The device deletes its local copy only after it has checked and journaled a receipt for exactly
 * that item: same id, same journal entry hash, same ciphertext hash and size (a receipt replayed
 * for another segment deletes nothing).
 */
import type { EventEmitter } from 'node:events';
import { sign, verify, type KeyObject } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { canonicalize } from './canonical-json.ts';
import { RecorderError } from './errors.ts';
import { entryLine, sha256Hex, type JournalEntry } from './journal-entry.ts';
import { parseWithSchema } from './schemas/validate.ts';

const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$' });
export const UploadId = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$',
  description: 'the evidence file name',
});

const JournalEntrySchema = Type.Object(
  {
    v: Type.Literal(1),
    seq: Type.Integer({ minimum: 0 }),
    prev: Hex64,
    time: Type.String(),
    device: Type.String({ minLength: 1 }),
    kind: Type.String({ minLength: 1 }),
    body: Type.Record(Type.String(), Type.Unknown()),
    sig: Type.String(),
  },
  { additionalProperties: false },
);

/**
 * A station relaying to its center sends the device's certificate along (issue 6 item 4): the
 * center holds no TLS session with the device, so this is where it learns the device's evidence
 * key, after checking that the certificate chains to a unit CA it trusts. A device sending for
 * itself leaves it out (its TLS certificate is the one that counts).
 */
const DeviceCertPem = Type.String({
  maxLength: 16384,
  pattern: '^-----BEGIN CERTIFICATE-----',
  description: "relay only: the device's X.509 certificate (PEM) binding its evidence key",
});

export const OfferSchema = Type.Object(
  {
    id: UploadId,
    entry: JournalEntrySchema,
    bytes: Type.Integer({ minimum: 0 }),
    sha256: Hex64,
    deviceCert: Type.Optional(DeviceCertPem),
  },
  { additionalProperties: false, description: 'an item the device wants to upload' },
);

export const UploadStateSchema = Type.Object(
  {
    id: UploadId,
    status: Type.Union([Type.Literal('send'), Type.Literal('have'), Type.Literal('refused')]),
    offset: Type.Integer({ minimum: 0, description: 'bytes the gateway already holds' }),
    code: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const DoneSchema = Type.Object(
  { id: UploadId, bytes: Type.Integer({ minimum: 0 }), sha256: Hex64 },
  { additionalProperties: false },
);

export const ReceiptBodySchema = Type.Object(
  {
    v: Type.Literal(1),
    id: UploadId,
    device: Type.String({ minLength: 1 }),
    /** seq and line hash of the device's journal entry that sealed the item */
    entrySeq: Type.Integer({ minimum: 0 }),
    entryHash: Hex64,
    bytes: Type.Integer({ minimum: 0 }),
    sha256: Hex64,
    /** who holds it now: the unit's station or the provincial center */
    holder: Type.String({ minLength: 1 }),
    role: Type.Union([Type.Literal('station'), Type.Literal('center')]),
    storedAt: Type.String(),
  },
  { additionalProperties: false },
);

export const ReceiptSchema = Type.Object(
  { receipt: ReceiptBodySchema, sig: Type.String() },
  { additionalProperties: false },
);

export type Offer = Static<typeof OfferSchema>;
export type UploadState = Static<typeof UploadStateSchema>;
export type Done = Static<typeof DoneSchema>;
export type ReceiptBody = Static<typeof ReceiptBodySchema>;
export type Receipt = Static<typeof ReceiptSchema>;

export function parseOffer(value: unknown): Offer {
  return parseWithSchema(OfferSchema, value, 'UPLOAD_BAD_MESSAGE', 'upload offer');
}

export function parseDone(value: unknown): Done {
  return parseWithSchema(DoneSchema, value, 'UPLOAD_BAD_MESSAGE', 'upload done');
}

export function parseUploadState(value: unknown): UploadState {
  return parseWithSchema(UploadStateSchema, value, 'UPLOAD_BAD_MESSAGE', 'upload state');
}

export function parseReceipt(value: unknown): Receipt {
  return parseWithSchema(ReceiptSchema, value, 'UPLOAD_BAD_MESSAGE', 'upload receipt');
}

/**
 * The entry kind of a complete evidence file a device found without its sealing entry (a crash
 * between the file's final name and its entry); the device journals its name, size and SHA-256.
 */
export const EVIDENCE_ORPHAN_KIND = 'evidence-orphan';

/** The entry kind of an unfinished seal a device kept as found after a power cut (never offered). */
export const EVIDENCE_UNFINISHED_KIND = 'evidence-unfinished';

/** The entry kind of a local evidence file a device found not to hash to its sealing entry. */
export const EVIDENCE_DAMAGED_KIND = 'evidence-damaged';

const SEALING_KINDS = new Set(['segment', 'photo']);

/** Entries of these kinds seal an evidence file (sealedBy says which, in what shape). */
export function sealsEvidence(kind: string): boolean {
  return SEALING_KINDS.has(kind) || kind === EVIDENCE_ORPHAN_KIND;
}

/** What a journal entry seals: an evidence file, and its plaintext when the device knew it. */
export interface Sealed {
  file: string;
  bytes: number;
  sha256: string;
  /** null for an orphan (its device never saw its plaintext again), or an entry that names none */
  plain: { bytes: number; sha256: string } | null;
}

/**
 * What `entry` seals for a gateway to store: a `segment` or `photo` entry names its evidence file
 * (`evidence`) and the plaintext's size and SHA-256; an `evidence-orphan` entry names the file only.
 * Null for an entry that seals nothing, or names its file in the wrong shape.
 */
export function sealedBy(entry: JournalEntry): Sealed | null {
  const body = (typeof entry.body === 'object' && entry.body !== null ? entry.body : {}) as Record<
    string,
    unknown
  >;
  const named = (value: unknown) => {
    const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    return typeof v.file === 'string' && Number.isSafeInteger(v.bytes) && typeof v.sha256 === 'string'
      ? { file: v.file, bytes: v.bytes as number, sha256: v.sha256 }
      : null;
  };
  if (entry.kind === EVIDENCE_ORPHAN_KIND) {
    const file = named(body);
    return file && { ...file, plain: null };
  }
  if (!SEALING_KINDS.has(entry.kind)) return null;
  const file = named(body.evidence);
  const plain =
    Number.isSafeInteger(body.bytes) && typeof body.sha256 === 'string'
      ? { bytes: body.bytes as number, sha256: body.sha256 }
      : null;
  return file && { ...file, plain };
}

/** The hash a receipt names for an entry: SHA-256 of its journal line, as `prev` chains them. */
export function entryHash(entry: JournalEntry): string {
  return sha256Hex(entryLine(entry));
}

/** Signs a receipt body (an item's or a journal's) with the gateway's Ed25519 key, over its canonical JSON. */
export function signReceipt<B extends ReceiptBody | JournalReceiptBody>(
  body: B,
  privateKey: KeyObject,
): { receipt: B; sig: string } {
  return { receipt: body, sig: sign(null, Buffer.from(canonicalize(body)), privateKey).toString('base64') };
}

/**
 * The kind of the entry a device journals when it acts on a receipt (before it deletes its copy);
 * its body is `journaledReceipt()`, from which `receiptOfJournaled()` rebuilds the receipt.
 */
export const UPLOAD_RECEIPT_KIND = 'upload-receipt';

/** The body of an `upload-receipt` entry: the item and the receipt's own fields and signature. */
export function journaledReceipt(
  item: { file: string; seq: number; sha256: string; bytes: number },
  receipt: Receipt,
): { [key: string]: string | number } {
  const { holder, role, storedAt } = receipt.receipt;
  return {
    file: item.file,
    seq: item.seq,
    sha256: item.sha256,
    bytes: item.bytes,
    holder,
    role,
    storedAt,
    receiptSig: receipt.sig,
  };
}

/**
 * The receipt an `upload-receipt` entry of `device` records, rebuilt with the hash of its sealing
 * entry's line; null when the body lacks a field. Check it with receiptSignedBy().
 */
export function receiptOfJournaled(
  device: string,
  body: Record<string, unknown>,
  entryHash: string,
): { receipt: ReceiptBody; sig: string } | null {
  const { file, seq, sha256, bytes, holder, role, storedAt, receiptSig } = body;
  if (
    typeof file !== 'string' ||
    typeof seq !== 'number' ||
    typeof sha256 !== 'string' ||
    typeof bytes !== 'number' ||
    typeof holder !== 'string' ||
    (role !== 'station' && role !== 'center') ||
    typeof storedAt !== 'string' ||
    typeof receiptSig !== 'string'
  )
    return null;
  return {
    receipt: { v: 1, id: file, device, entrySeq: seq, entryHash, bytes, sha256, holder, role, storedAt },
    sig: receiptSig,
  };
}

/** Whether `key` signed the receipt (a body without canonical JSON never was). */
export function receiptSignedBy(receipt: { receipt: object; sig: string }, key: KeyObject): boolean {
  return signedBy(receipt, key);
}

function signedBy(receipt: { receipt: object; sig: string }, key: KeyObject): boolean {
  const sig = Buffer.from(receipt.sig, 'base64');
  if (sig.length !== 64) return false;
  let signed: string;
  try {
    signed = canonicalize(receipt.receipt);
  } catch {
    return false; // a body without canonical JSON (a lone surrogate) was never signed by a gateway
  }
  return verify(null, Buffer.from(signed), key, sig);
}

/**
 * Checks a receipt against what the device holds. Throws RECEIPT_INVALID with the reason; the
 * caller must not delete anything then.
 */
export function checkReceipt(
  receipt: Receipt,
  expected: { id: string; device: string; entry: JournalEntry; bytes: number; sha256: string },
  gatewayKey: KeyObject,
): ReceiptBody {
  const body = receipt.receipt;
  if (!signedBy(receipt, gatewayKey)) {
    throw new RecorderError(
      'RECEIPT_INVALID',
      `the receipt for ${body.id} is not signed by the trusted gateway key`,
    );
  }
  checkReceiptNames(body, expected);
  return body;
}

/**
 * Checks that a receipt body names exactly this item (id, device, entry, size, ciphertext hash),
 * without its signature: for a holder that has no key to check it with. Throws RECEIPT_MISMATCH.
 */
export function checkReceiptNames(
  body: ReceiptBody,
  expected: { id: string; device: string; entry: JournalEntry; bytes: number; sha256: string },
): void {
  const mismatches: string[] = [];
  if (body.id !== expected.id) mismatches.push(`id ${body.id} ≠ ${expected.id}`);
  if (body.device !== expected.device) mismatches.push(`device ${body.device} ≠ ${expected.device}`);
  if (body.entrySeq !== expected.entry.seq)
    mismatches.push(`entry seq ${body.entrySeq} ≠ ${expected.entry.seq}`);
  if (body.entryHash !== entryHash(expected.entry)) mismatches.push('entry hash differs');
  if (body.bytes !== expected.bytes) mismatches.push(`bytes ${body.bytes} ≠ ${expected.bytes}`);
  if (body.sha256 !== expected.sha256) mismatches.push('ciphertext hash differs');
  if (mismatches.length) {
    throw new RecorderError(
      'RECEIPT_MISMATCH',
      `the receipt does not match ${expected.id}: ${mismatches.join('; ')}`,
      {
        mismatches,
      },
    );
  }
}

export interface QueuedItem {
  id: string;
  /** wall-clock ms the item was sealed */
  sealedAt: number;
  /** the event the item belongs to has marks (R3: reviewers need those first) */
  marked: boolean;
}

/** Upload order (issue 6): events with marks first, then oldest first. */
export function uploadOrder<T extends QueuedItem>(items: readonly T[]): T[] {
  return [...items].sort(
    (a, b) => Number(b.marked) - Number(a.marked) || a.sealedAt - b.sealedAt || (a.id < b.id ? -1 : 1),
  );
}

/** The device's journal, sent in order so the station holds each device's whole chain. */
export const JournalBatchSchema = Type.Object(
  {
    /** seq of the first line */
    from: Type.Integer({ minimum: 0 }),
    lines: Type.Array(Type.String({ maxLength: 1 << 20 }), { minItems: 1, maxItems: 500 }),
    deviceCert: Type.Optional(DeviceCertPem),
  },
  { additionalProperties: false },
);

/**
 * A gateway's signed word that it holds a device's journal from seq 0 up to and including the line
 * `seq`, whose SHA-256 is `hash` (it accepts only lines that continue the chain it holds).
 */
export const JournalReceiptBodySchema = Type.Object(
  {
    v: Type.Literal(1),
    kind: Type.Literal('journal'),
    device: Type.String({ minLength: 1 }),
    seq: Type.Integer({ minimum: 0 }),
    hash: Hex64,
    holder: Type.String({ minLength: 1 }),
    role: Type.Union([Type.Literal('station'), Type.Literal('center')]),
    at: Type.String(),
  },
  { additionalProperties: false },
);

export const JournalReceiptSchema = Type.Object(
  { receipt: JournalReceiptBodySchema, sig: Type.String() },
  { additionalProperties: false },
);

export const JournalStateSchema = Type.Object(
  {
    status: Type.Union([Type.Literal('ok'), Type.Literal('refused')]),
    /** the last line the station holds, or null */
    head: Type.Union([
      Type.Null(),
      Type.Object({ seq: Type.Integer({ minimum: 0 }), hash: Hex64 }, { additionalProperties: false }),
    ]),
    /** with status ok and a head: the gateway's receipt for the chain up to it */
    receipt: Type.Optional(JournalReceiptSchema),
    code: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export type JournalBatch = Static<typeof JournalBatchSchema>;
export type JournalState = Static<typeof JournalStateSchema>;
export type JournalReceiptBody = Static<typeof JournalReceiptBodySchema>;
export type JournalReceipt = Static<typeof JournalReceiptSchema>;

export function parseJournalReceipt(value: unknown): JournalReceipt {
  return parseWithSchema(JournalReceiptSchema, value, 'UPLOAD_BAD_MESSAGE', 'journal receipt');
}

/**
 * Checks a journal receipt against the line the holder should have as its head: signed by `key`,
 * for this device, this seq and this line hash. Throws RECEIPT_INVALID or RECEIPT_MISMATCH.
 */
export function checkJournalReceipt(
  receipt: JournalReceipt,
  expected: { device: string; seq: number; hash: string },
  key: KeyObject,
): JournalReceiptBody {
  const body = receipt.receipt;
  if (!signedBy(receipt, key)) {
    throw new RecorderError(
      'RECEIPT_INVALID',
      `the journal receipt for ${body.device} is not signed by the trusted gateway key`,
    );
  }
  const mismatches: string[] = [];
  if (body.device !== expected.device) mismatches.push(`device ${body.device} ≠ ${expected.device}`);
  if (body.seq !== expected.seq) mismatches.push(`seq ${body.seq} ≠ ${expected.seq}`);
  if (body.hash !== expected.hash) mismatches.push('line hash differs');
  if (mismatches.length) {
    throw new RecorderError(
      'RECEIPT_MISMATCH',
      `the journal receipt does not match ${expected.device} line ${expected.seq}: ${mismatches.join('; ')}`,
      { mismatches },
    );
  }
  return body;
}

export function parseJournalBatch(value: unknown): JournalBatch {
  return parseWithSchema(JournalBatchSchema, value, 'UPLOAD_BAD_MESSAGE', 'journal batch');
}

export function parseJournalState(value: unknown): JournalState {
  return parseWithSchema(JournalStateSchema, value, 'UPLOAD_BAD_MESSAGE', 'journal state');
}

/**
 * The transport seen from the sending side (a device, or a station relaying to its center): MQTT
 * in the product, anything that carries the same messages in tests.
 *
 * Events: 'state' (UploadState), 'receipt' (Receipt), 'journal-state' (JournalState).
 */
export interface UploadLink extends EventEmitter {
  sendOffer(offer: Offer): Promise<void>;
  /**
   * Resolves when the transport has accepted the chunk (a PUBACK never means "stored"). From then
   * on the link must not read `data` again: the sender reuses the buffer for a later chunk.
   */
  sendChunk(id: string, offset: number, data: Buffer): Promise<void>;
  sendDone(done: Done): Promise<void>;
  /** event 'journal-state' (JournalState) answers it */
  sendJournal(batch: JournalBatch): Promise<void>;
}
