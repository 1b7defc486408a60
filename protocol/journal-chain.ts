/**
 * Verifies a journal line by line: the pure core of `recorder journal verify`, of the device's
 * reader and of the gateway's check of uploaded journals. It never throws on bad input; every
 * problem is reported with its 1-based line number and a stable code.
 */
import type { KeyObject } from 'node:crypto';
import { canonicalize } from './canonical-json.ts';
import type { ErrorCode } from './errors.ts';
import {
  GENESIS_PREV,
  JOURNAL_VERSION,
  sha256Hex,
  verifyEntrySignature,
  type JournalEntry,
} from './journal-entry.ts';

export interface JournalProblem {
  line: number;
  code: ErrorCode;
  message: string;
}

export interface ChainVerifierOptions {
  publicKey: KeyObject;
  /** How far wall-clock time may step back between entries before it is reported. Default 2000 ms. */
  timeToleranceMs?: number;
  /** Every entry must name this device. Default: the device of the first entry. */
  device?: string;
  /**
   * A head known from elsewhere (a gateway receipt, the device's own state): the journal must reach
   * this seq and the line there must hash to this value. Without it, lines cut off at a line
   * boundary cannot be told from a journal that simply ends there.
   */
  knownHead?: { seq: number; hash: string };
  /** Verify a continuation: the first line must follow this head (seq and line hash). */
  continueFrom?: { nextSeq: number; prev: string };
}

/** Entries of this kind record a deliberate clock step; time comparisons restart after them. */
export const CLOCK_STEP_KIND = 'clock-step';

const HEX64 = /^[0-9a-f]{64}$/;

export interface ChainReport {
  ok: boolean;
  entries: number;
  lines: number;
  problems: JournalProblem[];
  /** seq and line hash of the last entry that parsed, if any */
  head: { seq: number; hash: string } | null;
}

export class ChainVerifier {
  private line = 0;
  private entries = 0;
  private expectedPrev = GENESIS_PREV;
  private expectedSeq: number | null = 0;
  private lastTimeMs: number | null = null;
  private device: string | undefined;
  private head: { seq: number; hash: string } | null = null;
  private knownHeadLineHash: string | null = null;
  private readonly problems: JournalProblem[] = [];
  private readonly tolerance: number;

  constructor(private readonly options: ChainVerifierOptions) {
    this.tolerance = options.timeToleranceMs ?? 2000;
    this.device = options.device;
    if (options.continueFrom) {
      this.expectedSeq = options.continueFrom.nextSeq;
      this.expectedPrev = options.continueFrom.prev;
    }
  }

  /**
   * One line's bytes without its newline. `terminated` is false only for bytes after the last
   * newline of the file: a torn write.
   */
  push(bytes: Uint8Array, terminated = true): void {
    const lineNo = ++this.line;
    if (!terminated) {
      this.report(lineNo, 'JOURNAL_TORN_TAIL', `${bytes.length} bytes after the last complete line`);
      return;
    }
    const hash = sha256Hex(bytes);
    const expectedPrev = this.expectedPrev;
    this.expectedPrev = hash;

    const text = Buffer.from(bytes).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      this.expectedSeq = null;
      this.report(lineNo, 'JOURNAL_BAD_JSON', (error as Error).message);
      return;
    }
    const shapeError = entryShapeError(parsed);
    if (shapeError) {
      this.expectedSeq = null;
      this.report(lineNo, 'JOURNAL_BAD_ENTRY', shapeError);
      return;
    }
    const entry = parsed as JournalEntry;
    this.entries++;
    this.head = { seq: entry.seq, hash };
    if (this.options.knownHead?.seq === entry.seq) this.knownHeadLineHash = hash;

    let canonical: string | null;
    try {
      canonical = canonicalize(entry);
    } catch {
      canonical = null;
    }
    if (canonical !== text) {
      this.report(lineNo, 'JOURNAL_NOT_CANONICAL', 'the line differs from the canonical JSON of its entry');
    }
    if (!verifyEntrySignature(entry, this.options.publicKey)) {
      this.report(lineNo, 'JOURNAL_BAD_SIGNATURE', `seq ${entry.seq}: the signature does not verify`);
    }
    if (entry.prev !== expectedPrev) {
      this.report(
        lineNo,
        'JOURNAL_BAD_PREV',
        lineNo === 1 && !this.options.continueFrom
          ? `the first line's prev should be 64 zeros, is ${entry.prev}`
          : `prev ${entry.prev} is not the hash of line ${lineNo - 1} (${expectedPrev})`,
      );
    }
    if (this.expectedSeq !== null && entry.seq !== this.expectedSeq) {
      if (entry.seq > this.expectedSeq) {
        this.report(lineNo, 'JOURNAL_SEQ_GAP', `seq ${entry.seq}, expected ${this.expectedSeq}`);
      } else {
        this.report(lineNo, 'JOURNAL_SEQ_REPEAT', `seq ${entry.seq}, expected ${this.expectedSeq}`);
      }
    }
    this.expectedSeq = entry.seq + 1;

    this.device ??= entry.device;
    if (entry.device !== this.device) {
      this.report(lineNo, 'JOURNAL_DEVICE_MISMATCH', `device ${entry.device}, journal of ${this.device}`);
    }

    const timeMs = Date.parse(entry.time);
    if (entry.kind === CLOCK_STEP_KIND) {
      this.lastTimeMs = timeMs;
    } else {
      if (this.lastTimeMs !== null && timeMs < this.lastTimeMs - this.tolerance) {
        this.report(
          lineNo,
          'JOURNAL_TIME_BACKWARDS',
          `time ${entry.time} is ${this.lastTimeMs - timeMs} ms before the previous entry's`,
        );
      }
      this.lastTimeMs = Math.max(timeMs, this.lastTimeMs ?? timeMs);
    }
  }

  /** Finishes the check and returns the report. */
  finish(): ChainReport {
    const known = this.options.knownHead;
    if (known) {
      if (this.head === null || this.head.seq < known.seq) {
        this.report(
          this.line + 1,
          'JOURNAL_TRUNCATED',
          `the journal ends at seq ${this.head?.seq ?? 'none'}, but seq ${known.seq} is known to exist`,
        );
      } else if (this.knownHeadLineHash !== known.hash) {
        this.report(
          this.line,
          'JOURNAL_HEAD_MISMATCH',
          `the entry with seq ${known.seq} does not hash to the known ${known.hash}`,
        );
      }
    }
    return {
      ok: this.problems.length === 0,
      entries: this.entries,
      lines: this.line,
      problems: [...this.problems].sort((a, b) => a.line - b.line),
      head: this.head,
    };
  }

  private report(line: number, code: ErrorCode, message: string): void {
    this.problems.push({ line, code, message });
  }
}

function entryShapeError(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const e = value as Record<string, unknown>;
  if (e.v !== JOURNAL_VERSION) return `v is ${JSON.stringify(e.v)}, expected ${JOURNAL_VERSION}`;
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 0) return 'seq is not a non-negative integer';
  if (typeof e.prev !== 'string' || !HEX64.test(e.prev)) return 'prev is not 64 lowercase hex digits';
  if (typeof e.time !== 'string' || Number.isNaN(Date.parse(e.time))) return 'time is not an ISO 8601 time';
  if (typeof e.device !== 'string' || e.device === '') return 'device is not a non-empty string';
  if (typeof e.kind !== 'string' || e.kind === '') return 'kind is not a non-empty string';
  if (typeof e.body !== 'object' || e.body === null || Array.isArray(e.body)) return 'body is not an object';
  if (typeof e.sig !== 'string') return 'sig is not a string';
  const extra = Object.keys(e).filter(
    (k) => !['v', 'seq', 'prev', 'time', 'device', 'kind', 'body', 'sig'].includes(k),
  );
  if (extra.length) return `unknown fields: ${extra.join(', ')}`;
  return null;
}

/** Splits a whole journal file into lines and verifies them. */
export function verifyJournalBytes(data: Uint8Array, options: ChainVerifierOptions): ChainReport {
  const verifier = new ChainVerifier(options);
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0x0a) {
      verifier.push(data.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < data.length) verifier.push(data.subarray(start), false);
  return verifier.finish();
}
