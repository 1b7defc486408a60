/**
 * `recorder evidence verify`: re-checks everything the evidence store claims (issue 6 item 5,
 * R18 "deleting or editing original recordings … must be detectable"):
 *
 * - every object re-hashed against its index row, and read-only (write-once);
 * - with the unit CAs: every device's key bound by the certificate kept with it, issued by the CA
 *   of the unit its items are indexed under (so the key rests on the unit CA, not on the index);
 * - every device's stored journal chain checked line by line with the device's evidence key as
 *   first seen (signature, seq, prev, and the hash column of each row), and reaching the head the
 *   store knows apart from it (the last line appended, the line relayed, every item's entry);
 * - every item's sealing entry signed by its device, naming the item, and being the very line the
 *   device's chain holds at that seq; every index column taken from that entry (officer, event,
 *   kind, start, end, positions: what R9 classifies by) equal to what the device signed;
 * - every receipt the store gave (and every center receipt it holds) signed and naming the item;
 * - every receipt of this gateway a device journaled names an item held (or purged after relay);
 * - every item marked relayed or purged holds the center's receipt for it (signed, with the
 *   center's receipt key; else at least well-formed and naming the item);
 * - station with an upstream: the center's receipt for each relayed journal, naming a line held here;
 * - center role: every item has a successful plaintext check at ingest.
 *
 * An object purged after relay is expected to be gone, but only with that receipt: the center holds it.
 */
import { createPublicKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import { canonicalize } from '../protocol/canonical-json.ts';
import { isRecorderError } from '../protocol/errors.ts';
import { ChainVerifier } from '../protocol/journal-chain.ts';
import { sha256Hex, verifyEntrySignature, type JournalEntry } from '../protocol/journal-entry.ts';
import {
  checkJournalReceipt,
  checkReceipt,
  parseJournalReceipt,
  parseReceipt,
  receiptOfJournaled,
  receiptSignedBy,
  sealedBy,
  UPLOAD_RECEIPT_KIND,
} from '../protocol/upload.ts';
import { checkDeviceCertificate } from './device-certificate.ts';
import { checkCenterReceipt } from './center-receipt.ts';
import { indexColumnsOf, type EvidenceStore, type ItemLifecycle, type StoredItem } from './evidence-store.ts';

export interface StoreProblem {
  code: string;
  device: string | null;
  id: string | null;
  message: string;
}

export interface StoreReport {
  ok: boolean;
  items: number;
  devices: number;
  journalLines: number;
  problems: StoreProblem[];
}

export interface VerifyStoreOptions {
  role: 'station' | 'center';
  /** the public half of this gateway's receipt key: the receipts it gave must verify */
  receiptKey?: KeyObject;
  /** station with an upstream: the center's receipt key */
  centerReceiptKey?: KeyObject;
  /** the CAs of the units the gateway admits (admittedCas): each device's certificate is checked */
  unitCas?: readonly X509Certificate[];
}

export async function verifyStore(store: EvidenceStore, options: VerifyStoreOptions): Promise<StoreReport> {
  const problems: StoreProblem[] = [];
  const add = (code: string, device: string | null, id: string | null, message: string) =>
    problems.push({ code, device, id, message });
  const keys = new Map<string, KeyObject | null>();
  const keyOf = (device: string): KeyObject | null => {
    if (!keys.has(device)) {
      const known = store.knownDevice(device);
      keys.set(device, known ? createPublicKey(known.publicKeyPem) : null);
      if (!known) add('STORE_DEVICE_KEY_MISSING', device, null, `no evidence key is held for ${device}`);
    }
    return keys.get(device)!;
  };

  // Journals first: items are then checked against the chains found intact.
  const items = store.list();
  const heads = knownHeads(store, items);
  let journalLines = 0;
  const chains = new Map<string, Map<number, string>>();
  for (const device of store.devices()) {
    const rows = store.journalRows(device);
    const lines = new Map<number, string>();
    chains.set(device, lines);
    const knownHead = heads.get(device);
    if (rows.length === 0) {
      if (knownHead)
        add(
          'JOURNAL_TRUNCATED',
          device,
          null,
          `no journal line is held, but seq ${knownHead.seq} is known to exist (${knownHead.from})`,
        );
      continue;
    }
    const key = keyOf(device);
    journalLines += rows.length;
    for (const row of rows) {
      lines.set(row.seq, row.line);
      if (sha256Hex(row.line) !== row.hash)
        add('STORE_JOURNAL_HASH', device, null, `journal line ${row.seq} does not hash to its recorded hash`);
    }
    if (!key) continue;
    const verifier = new ChainVerifier({ publicKey: key, device, ...(knownHead ? { knownHead } : {}) });
    for (const row of rows) verifier.push(Buffer.from(row.line, 'utf8'));
    const report = verifier.finish();
    for (const p of report.problems) {
      if (p.code === 'JOURNAL_TRUNCATED' || p.code === 'JOURNAL_HEAD_MISMATCH')
        add(p.code, device, null, `${p.message} (${knownHead!.from})`);
      else add(p.code, device, null, `journal line ${rows[p.line - 1]?.seq ?? p.line}: ${p.message}`);
    }
    if (options.centerReceiptKey) checkJournalRelay(store, device, lines, options.centerReceiptKey, add);
  }

  for (const item of items) {
    const life = store.lifecycle(item.device, item.id)!;
    const entry = checkEntry(item, keyOf(item.device), add);
    // Relayed or purged only with the center's receipt for exactly this item (R8, R18): without
    // it, a purge is a deletion, and a relay mark would let the next purge delete the only copy.
    const relayed =
      life.relayedAt !== null || life.purgedAt !== null || life.centerReceipt !== null
        ? checkRelay(item, life, options.centerReceiptKey, add)
        : false;
    if (!life.purgedAt || !relayed) await checkObject(store, item, add);
    const held = chains.get(item.device)?.get(item.entrySeq);
    if (held === undefined) {
      add(
        'STORE_ENTRY_NOT_IN_CHAIN',
        item.device,
        item.id,
        `the device's journal held here has no line ${item.entrySeq} (not synced yet, or removed)`,
      );
    } else if (held !== item.entryLine) {
      add(
        'STORE_ENTRY_NOT_IN_CHAIN',
        item.device,
        item.id,
        `the sealing entry differs from journal line ${item.entrySeq} of ${item.device}`,
      );
    }
    if (entry && item.receipt && options.receiptKey)
      checkStoredReceipt(item, entry, item.receipt, options.receiptKey, 'receipt', add);
    if (options.role === 'center' && !life.ingest?.ok)
      add('STORE_INGEST_UNCHECKED', item.device, item.id, 'no successful plaintext check is recorded');
  }
  checkJournaledReceipts(items, chains, options, add);
  if (options.unitCas) checkDeviceCertificates(store, items, options.unitCas, add);
  return { ok: problems.length === 0, items: items.length, devices: chains.size, journalLines, problems };
}

/**
 * What the store knows of each device's journal head apart from the journal itself (R18: a tail
 * cut off at a line boundary leaves a chain that verifies): the last line ever appended, the line
 * the center receipted, and the sealing entry of every item. The highest seq of these, per device.
 */
function knownHeads(
  store: EvidenceStore,
  items: readonly StoredItem[],
): Map<string, { seq: number; hash: string; from: string }> {
  const heads = new Map<string, { seq: number; hash: string; from: string }>();
  const know = (device: string, head: { seq: number; hash: string } | null, from: string) => {
    if (head && head.seq > (heads.get(device)?.seq ?? -1)) heads.set(device, { ...head, from });
  };
  for (const item of items)
    know(item.device, { seq: item.entrySeq, hash: item.entryHash }, `the sealing entry of ${item.id}`);
  for (const device of store.devices()) {
    know(device, store.relayedJournalHead(device), 'the head relayed to the center');
    know(device, store.recordedJournalHead(device), 'the last line appended here');
  }
  return heads;
}

/**
 * Every receipt of this gateway a device journaled (`upload-receipt`, the device's word that it
 * deleted its copy on it) names an item the index holds: an item deleted here, row and object, is
 * still named by the device's signed journal. A receipt is this gateway's when its signature, as
 * journaled, verifies with the receipt key, or when it names this gateway's role and a holder of the
 * receipts stored here.
 */
function checkJournaledReceipts(
  items: readonly StoredItem[],
  chains: Map<string, Map<number, string>>,
  options: VerifyStoreOptions,
  add: Add,
): void {
  const indexed = new Map(items.map((i) => [`${i.device}\u0000${i.id}`, i]));
  const holders = new Set<string>();
  for (const item of items) {
    try {
      if (item.receipt) holders.add(parseReceipt(JSON.parse(item.receipt)).receipt.holder);
    } catch {
      // STORE_RECEIPT_INVALID, above
    }
  }
  for (const [device, lines] of chains) {
    const named = new Set<string>();
    for (const [seq, line] of lines) {
      if (!line.includes(`"kind":"${UPLOAD_RECEIPT_KIND}"`)) continue;
      let entry: JournalEntry;
      try {
        entry = JSON.parse(line) as JournalEntry;
      } catch {
        continue; // a chain problem, above
      }
      if (entry.kind !== UPLOAD_RECEIPT_KIND) continue;
      const b = entry.body as Record<string, unknown>;
      if (typeof b.file !== 'string' || named.has(b.file)) continue;
      const sealing = typeof b.seq === 'number' ? lines.get(b.seq) : undefined;
      const rebuilt = sealing === undefined ? null : receiptOfJournaled(device, b, sha256Hex(sealing));
      const signedHere =
        options.receiptKey !== undefined && rebuilt !== null && receiptSignedBy(rebuilt, options.receiptKey);
      const ours = signedHere || (b.role === options.role && holders.has(b.holder as string));
      if (!ours) continue;
      named.add(b.file);
      const item = indexed.get(`${device}\u0000${b.file}`);
      if (!item) {
        add(
          'STORE_ITEM_MISSING',
          device,
          b.file,
          `journal line ${seq} records this gateway's receipt for ${b.file}, which the index does not hold`,
        );
      } else if (item.sha256 !== b.sha256 || item.bytes !== b.bytes || item.entrySeq !== b.seq) {
        add(
          'STORE_ITEM_MISSING',
          device,
          b.file,
          `journal line ${seq} records this gateway's receipt for another ${b.file} (entry, size or hash) than the index holds`,
        );
      }
    }
  }
}

/**
 * Every device's evidence key as the store holds it is the one its kept certificate binds, and that
 * certificate was issued by the CA of the unit the device's items are indexed under.
 */
function checkDeviceCertificates(
  store: EvidenceStore,
  items: readonly StoredItem[],
  cas: readonly X509Certificate[],
  add: Add,
): void {
  const problem = (device: string, message: string) =>
    add('STORE_DEVICE_CERT_INVALID', device, null, message);
  const unitsOf = new Map<string, Set<string>>();
  for (const item of items) {
    if (!unitsOf.has(item.device)) unitsOf.set(item.device, new Set());
    unitsOf.get(item.device)!.add(item.unit);
  }
  for (const device of store.devices()) {
    const known = store.knownDevice(device);
    if (!known) continue; // STORE_DEVICE_KEY_MISSING, above
    if (!known.certPem) {
      problem(device, `no certificate is held for ${device}: its evidence key rests on the index alone`);
      continue;
    }
    let checked: { key: KeyObject; unit: string | null };
    try {
      checked = checkDeviceCertificate(known.certPem, device, cas);
    } catch (error) {
      problem(device, isRecorderError(error) ? error.detail : (error as Error).message);
      continue;
    }
    if (checked.key.export({ type: 'spki', format: 'pem' }) !== known.publicKeyPem)
      problem(
        device,
        `the certificate held for ${device} binds another evidence key than the one the index holds`,
      );
    for (const unit of unitsOf.get(device) ?? [])
      if (unit !== checked.unit)
        problem(
          device,
          `items of ${device} are indexed under unit ${unit}, its certificate is of unit ${checked.unit}`,
        );
  }
}

type Add = (code: string, device: string | null, id: string | null, message: string) => void;

async function checkObject(store: EvidenceStore, item: StoredItem, add: Add): Promise<void> {
  const problem = await store.checkObject(item);
  const path = store.objectPath(item.sha256);
  if (problem) {
    const what: Record<string, string> = {
      STORE_OBJECT_MISSING: `${path} is missing`,
      STORE_OBJECT_SIZE: `${path} is not ${item.bytes} bytes`,
      STORE_OBJECT_HASH: `${path} does not hash to ${item.sha256}`,
    };
    add(problem, item.device, item.id, what[problem] ?? problem);
  }
  if (problem !== 'STORE_OBJECT_MISSING' && statSync(path).mode & 0o222)
    add('STORE_OBJECT_WRITABLE', item.device, item.id, `${path} is writable; stored objects are read-only`);
}

function checkEntry(item: StoredItem, key: KeyObject | null, add: Add): JournalEntry | null {
  let entry: JournalEntry;
  try {
    entry = JSON.parse(item.entryLine) as JournalEntry;
  } catch {
    add('STORE_ENTRY_INVALID', item.device, item.id, 'the sealing entry is not JSON');
    return null;
  }
  const evidence = sealedBy(entry);
  const mismatches: string[] = [];
  if (sha256Hex(item.entryLine) !== item.entryHash) mismatches.push('entry hash');
  if (entry.seq !== item.entrySeq) mismatches.push('entry seq');
  if (entry.device !== item.device) mismatches.push('device');
  if (evidence?.file !== item.id || evidence?.bytes !== item.bytes || evidence?.sha256 !== item.sha256)
    mismatches.push('evidence file, size or hash');
  if (key && !verifyEntrySignature(entry, key)) mismatches.push("the device's signature");
  if (mismatches.length) {
    add(
      'STORE_ENTRY_INVALID',
      item.device,
      item.id,
      `the sealing entry does not match: ${mismatches.join(', ')}`,
    );
  }
  // R9: an item is found by these columns; an edited one hides it from a search, or files it under
  // another officer or event, while the object and the entry stay intact.
  const signed = indexColumnsOf(entry);
  const edited = (Object.keys(signed) as (keyof typeof signed)[]).filter((c) =>
    // The receiver kept the fixes in the key order they came in; the entry line is canonical.
    c === 'positions' ? canonicalOrNull(item.positions) !== signed.positions : item[c] !== signed[c],
  );
  if (edited.length) {
    add(
      'STORE_INDEX_MISMATCH',
      item.device,
      item.id,
      `the index differs from the device-signed sealing entry in: ${edited.join(', ')}`,
    );
  }
  return entry;
}

function canonicalOrNull(json: string): string | null {
  try {
    return canonicalize(JSON.parse(json));
  } catch {
    return null;
  }
}

function checkStoredReceipt(
  item: StoredItem,
  entry: JournalEntry,
  text: string,
  key: KeyObject,
  what: string,
  add: Add,
): void {
  try {
    checkReceipt(
      parseReceipt(JSON.parse(text)),
      { id: item.id, device: item.device, entry, bytes: item.bytes, sha256: item.sha256 },
      key,
    );
  } catch (error) {
    add(
      'STORE_RECEIPT_INVALID',
      item.device,
      item.id,
      `the ${what}: ${isRecorderError(error) ? error.detail : (error as Error).message}`,
    );
  }
}

/**
 * Station: an item marked relayed or purged holds the center's receipt for it, signed by the
 * center when its key is configured (else at least well-formed and naming the item). True when it
 * checks: only then may the object be gone.
 */
function checkRelay(item: StoredItem, life: ItemLifecycle, key: KeyObject | undefined, add: Add): boolean {
  const marked = [life.relayedAt && 'relayed', life.purgedAt && 'purged'].filter(Boolean).join(' and ');
  if (life.centerReceipt === null) {
    add(
      'STORE_RELAY_UNPROVEN',
      item.device,
      item.id,
      `marked ${marked}, but no center receipt is held for it`,
    );
    return false;
  }
  try {
    checkCenterReceipt(item, life.centerReceipt, key);
  } catch (error) {
    add(
      'STORE_RECEIPT_INVALID',
      item.device,
      item.id,
      `the center receipt: ${isRecorderError(error) ? error.detail : (error as Error).message}`,
    );
    return false;
  }
  if (!life.relayedAt) {
    add('STORE_RELAY_UNPROVEN', item.device, item.id, `marked ${marked}, but not relayed`);
    return false;
  }
  return true;
}

/** Station: the center's receipt for the journal relayed so far names a line held here, byte for byte. */
function checkJournalRelay(
  store: EvidenceStore,
  device: string,
  lines: Map<number, string>,
  key: KeyObject,
  add: Add,
): void {
  const relayed = store.relayedJournalHead(device);
  if (!relayed) return;
  const problem = (message: string) => add('STORE_JOURNAL_RECEIPT_INVALID', device, null, message);
  if (!relayed.receipt) {
    problem(
      `the journal relayed up to line ${relayed.seq} has no center receipt (the next relay round asks for one)`,
    );
    return;
  }
  const line = lines.get(relayed.seq);
  if (line === undefined || sha256Hex(line) !== relayed.hash) {
    problem(`the journal relayed up to line ${relayed.seq} does not end in a line held here`);
    return;
  }
  try {
    const body = checkJournalReceipt(
      parseJournalReceipt(JSON.parse(relayed.receipt)),
      { device, ...relayed },
      key,
    );
    if (body.role !== 'center') problem(`the journal receipt is from a ${body.role}, not a center`);
  } catch (error) {
    problem(
      `the center's journal receipt: ${isRecorderError(error) ? error.detail : (error as Error).message}`,
    );
  }
}
