/**
 * Journal entries: the format of DESIGN.md "The journal".
 *
 * - each line is the RFC 8785 canonical JSON of the complete entry, `sig` included, then `\n`;
 * - `sig` is the base64 Ed25519 signature over the canonical JSON of the entry without `sig`;
 * - `prev` is the hex SHA-256 of the previous line's bytes (without `\n`), 64 zeros for the first;
 * - `seq` starts at 0 and rises by one.
 *
 * Pure functions only: the writer and reader that touch files live in device/.
 */
import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalize, type JsonValue } from './canonical-json.ts';
import { RecorderError } from './errors.ts';

export const JOURNAL_VERSION = 1;
export const GENESIS_PREV = '0'.repeat(64);

export type JsonObject = { [key: string]: JsonValue };

export interface JournalEntry {
  v: typeof JOURNAL_VERSION;
  seq: number;
  prev: string;
  time: string;
  device: string;
  kind: string;
  body: JsonObject;
  sig: string;
}

export type UnsignedEntry = Omit<JournalEntry, 'sig'>;

/** The chain position a new entry continues from. */
export interface JournalHead {
  /** seq of the next entry to write */
  nextSeq: number;
  /** hex SHA-256 of the last line, or GENESIS_PREV */
  prev: string;
}

export const EMPTY_HEAD: JournalHead = { nextSeq: 0, prev: GENESIS_PREV };

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The bytes an entry's signature covers: canonical JSON of the entry without `sig`. */
export function signingInput(entry: UnsignedEntry | JournalEntry): string {
  const { sig: _sig, ...unsigned } = entry as JournalEntry;
  return canonicalize(unsigned);
}

export interface NewEntry {
  device: string;
  kind: string;
  body: JsonObject;
  time: Date;
}

/**
 * Entries must stay checkable with `jq -cS` (DESIGN.md "The journal"): only strings, booleans,
 * safe integers, arrays and objects. jq reformats fractional and large numbers, so they are refused;
 * positions and measurements go in as decimal strings.
 */
export function auditableBodyProblem(value: unknown, path = 'body'): string | null {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value)
      ? null
      : `${path} is ${value}: only safe integers (put decimals in strings)`;
  }
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = auditableBodyProblem(value[i], `${path}[${i}]`);
      if (problem) return problem;
    }
    return null;
  }
  if (typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const problem = auditableBodyProblem(item, `${path}.${key}`);
      if (problem) return problem;
    }
    return null;
  }
  return `${path} is a ${typeof value}`;
}

export function signEntry(head: JournalHead, entry: NewEntry, privateKey: KeyObject): JournalEntry {
  const problem = auditableBodyProblem(entry.body);
  if (problem) throw new RecorderError('JOURNAL_BAD_ENTRY', `cannot journal ${entry.kind}: ${problem}`);
  const unsigned: UnsignedEntry = {
    v: JOURNAL_VERSION,
    seq: head.nextSeq,
    prev: head.prev,
    time: entry.time.toISOString(),
    device: entry.device,
    kind: entry.kind,
    body: entry.body,
  };
  const sig = sign(null, Buffer.from(signingInput(unsigned)), privateKey).toString('base64');
  return { ...unsigned, sig };
}

/** The exact line for an entry, without the trailing newline. */
export function entryLine(entry: JournalEntry): string {
  return canonicalize(entry);
}

export function headAfter(entry: JournalEntry, line: string | Uint8Array): JournalHead {
  return { nextSeq: entry.seq + 1, prev: sha256Hex(line) };
}

/**
 * Checks the Ed25519 signature. The base64 must be canonical too: Ed25519 signatures are 64 bytes,
 * whose base64 has 4 unused bits that decoders ignore, so a non-canonical spelling would let a
 * line's bytes change while its signature still verifies.
 */
export function verifyEntrySignature(entry: JournalEntry, publicKey: KeyObject): boolean {
  const sig = Buffer.from(entry.sig, 'base64');
  if (sig.length !== 64 || sig.toString('base64') !== entry.sig) return false;
  return verify(null, Buffer.from(signingInput(entry)), publicKey, sig);
}
