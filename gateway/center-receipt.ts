/**
 * The center's receipt for an item a station relayed: the one proof that the provincial center
 * holds it (R8). Only an item whose center receipt checks may lose its object at the station, and
 * only such an item may be found without its object by `recorder evidence verify` (R18: a deleted
 * recording must be detectable). A `relayed_at` or `purged_at` in the index proves nothing by
 * itself: anyone who can write the index can set it.
 */
import type { KeyObject } from 'node:crypto';
import { RecorderError } from '../protocol/errors.ts';
import type { JournalEntry } from '../protocol/journal-entry.ts';
import { checkReceipt, checkReceiptNames, parseReceipt, type ReceiptBody } from '../protocol/upload.ts';
import type { StoredItem } from './evidence-store.ts';

/**
 * Checks the center receipt held for `item` (JSON, as the relay stored it): present, well-formed,
 * by a center, naming exactly this item (id, device, entry, size, ciphertext hash) and, with the
 * center's receipt key, signed by it. Throws RECEIPT_MISSING, UPLOAD_BAD_MESSAGE, RECEIPT_INVALID
 * or RECEIPT_MISMATCH.
 */
export function checkCenterReceipt(item: StoredItem, text: string | null, key?: KeyObject): ReceiptBody {
  const where = `${item.device}/${item.id}`;
  if (text === null) throw new RecorderError('RECEIPT_MISSING', `no center receipt is held for ${where}`);
  let json: unknown;
  let entry: JournalEntry;
  try {
    json = JSON.parse(text);
    entry = JSON.parse(item.entryLine) as JournalEntry;
  } catch {
    throw new RecorderError('RECEIPT_INVALID', `the center receipt or the entry of ${where} is not JSON`);
  }
  const receipt = parseReceipt(json);
  const expected = { id: item.id, device: item.device, entry, bytes: item.bytes, sha256: item.sha256 };
  const body = key ? checkReceipt(receipt, expected, key) : receipt.receipt;
  if (!key) checkReceiptNames(body, expected);
  if (body.role !== 'center')
    throw new RecorderError(
      'RECEIPT_MISMATCH',
      `the receipt for ${where} is from a ${body.role}, not a center`,
    );
  return body;
}
