/**
 * The station's (or center's) evidence store (DESIGN.md "The gateway's evidence store"): encrypted
 * items on disk, write-once and content-addressed, indexed in an embedded SQL database (R9: by
 * unit, device, officer, event, time, position, marks). An item is stored once; storing it again
 * returns what is already there.
 *
 * better-sqlite3: a synchronous, well-kept SQLite binding; Node 20 has no built-in SQLite.
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { RecorderError } from '../protocol/errors.ts';

export interface StoredItem {
  /** the evidence file name the device gave it (unique per device) */
  id: string;
  unit: string;
  device: string;
  officer: string | null;
  event: string | null;
  kind: string;
  start: string | null;
  end: string | null;
  entrySeq: number;
  entryHash: string;
  /** the signed journal line that sealed it, verbatim */
  entryLine: string;
  bytes: number;
  sha256: string;
  /** JSON array of fixes as journaled */
  positions: string;
  storedAt: string;
  /** the signed receipt given for it, JSON */
  receipt: string | null;
}

export interface ItemFilter {
  device?: string;
  officer?: string;
  event?: string;
  /** ISO times: items overlapping [from, to] */
  from?: string;
  to?: string;
  limit?: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS items (
  device TEXT NOT NULL,
  id TEXT NOT NULL,
  unit TEXT NOT NULL,
  officer TEXT,
  event TEXT,
  kind TEXT NOT NULL,
  start TEXT,
  "end" TEXT,
  entry_seq INTEGER NOT NULL,
  entry_hash TEXT NOT NULL,
  entry_line TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  positions TEXT NOT NULL,
  stored_at TEXT NOT NULL,
  receipt TEXT,
  PRIMARY KEY (device, id)
);
CREATE INDEX IF NOT EXISTS items_time ON items (start, "end");
CREATE INDEX IF NOT EXISTS items_officer ON items (officer, start);
CREATE INDEX IF NOT EXISTS items_event ON items (event);
CREATE INDEX IF NOT EXISTS items_sha ON items (sha256);
CREATE TABLE IF NOT EXISTS journal_lines (
  device TEXT NOT NULL,
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL,
  line TEXT NOT NULL,
  PRIMARY KEY (device, seq)
);
`;

export class EvidenceStore {
  private readonly db: Database.Database;

  constructor(readonly root: string) {
    mkdirSync(join(root, 'objects'), { recursive: true });
    mkdirSync(join(root, 'incoming'), { recursive: true });
    this.db = new Database(join(root, 'index.sqlite'));
    this.db.pragma('journal_mode = WAL');
    // FULL: a committed index row survives a power cut, like the file it points to.
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
  }

  /** Where incoming uploads are written before they are verified and stored. */
  incomingPath(device: string, id: string): string {
    return join(this.root, 'incoming', `${device}--${id}.part`);
  }

  objectPath(sha256: string): string {
    return join(this.root, 'objects', sha256.slice(0, 2), `${sha256}.enc`);
  }

  get(device: string, id: string): StoredItem | null {
    const row = this.db.prepare('SELECT * FROM items WHERE device = ? AND id = ?').get(device, id) as
      Row | undefined;
    return row ? fromRow(row) : null;
  }

  /**
   * Moves a verified file into the store and indexes it, write-once: the object becomes read-only,
   * and an item already stored is returned unchanged (nothing is stored twice).
   */
  put(file: string, item: Omit<StoredItem, 'storedAt' | 'receipt'>, storedAt: string): StoredItem {
    const existing = this.get(item.device, item.id);
    if (existing) {
      if (existing.sha256 !== item.sha256) {
        throw new RecorderError(
          'STORE_CONFLICT',
          `${item.device}/${item.id} is stored already with another hash`,
        );
      }
      return existing;
    }
    const target = this.objectPath(item.sha256);
    mkdirSync(dirname(target), { recursive: true });
    if (!existsSync(target)) {
      const fd = openSync(file, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      chmodSync(file, 0o444);
      renameSync(file, target);
      fsyncPath(dirname(target));
    }
    const stored: StoredItem = { ...item, storedAt, receipt: null };
    this.db
      .prepare(
        `INSERT INTO items (device, id, unit, officer, event, kind, start, "end", entry_seq, entry_hash, entry_line,
           bytes, sha256, positions, stored_at, receipt)
         VALUES (@device, @id, @unit, @officer, @event, @kind, @start, @end, @entrySeq, @entryHash, @entryLine,
           @bytes, @sha256, @positions, @storedAt, @receipt)`,
      )
      .run(stored);
    return stored;
  }

  setReceipt(device: string, id: string, receipt: string): void {
    this.db
      .prepare('UPDATE items SET receipt = ? WHERE device = ? AND id = ? AND receipt IS NULL')
      .run(receipt, device, id);
  }

  list(filter: ItemFilter = {}): StoredItem[] {
    const conditions: [keyof ItemFilter, string][] = [
      ['device', 'device = @device'],
      ['officer', 'officer = @officer'],
      ['event', 'event = @event'],
      ['from', '"end" >= @from'],
      ['to', 'start <= @to'],
    ];
    const where = conditions.filter(([key]) => filter[key] !== undefined).map(([, sql]) => sql);
    const args = Object.fromEntries(
      conditions.filter(([key]) => filter[key] !== undefined).map(([key]) => [key, filter[key]]),
    );
    const sql = `SELECT * FROM items ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY start, device, id LIMIT @limit`;
    return (this.db.prepare(sql).all({ ...args, limit: filter.limit ?? 1_000_000 }) as Row[]).map(fromRow);
  }

  /** Re-hashes one stored object: null when it matches, else what is wrong. */
  async checkObject(item: StoredItem): Promise<string | null> {
    const path = this.objectPath(item.sha256);
    if (!existsSync(path)) return 'STORE_OBJECT_MISSING';
    const size = statSync(path).size;
    if (size !== item.bytes) return 'STORE_OBJECT_SIZE';
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return hash.digest('hex') === item.sha256 ? null : 'STORE_OBJECT_HASH';
  }

  /** The last journal line held for a device. */
  journalHead(device: string): { seq: number; hash: string } | null {
    const row = this.db
      .prepare('SELECT seq, hash FROM journal_lines WHERE device = ? ORDER BY seq DESC LIMIT 1')
      .get(device) as { seq: number; hash: string } | undefined;
    return row ?? null;
  }

  journalHash(device: string, seq: number): string | null {
    const row = this.db
      .prepare('SELECT hash FROM journal_lines WHERE device = ? AND seq = ?')
      .get(device, seq) as { hash: string } | undefined;
    return row?.hash ?? null;
  }

  /** Appends verified journal lines in one transaction. */
  appendJournal(device: string, lines: { seq: number; hash: string; line: string }[]): void {
    const insert = this.db.prepare('INSERT INTO journal_lines (device, seq, hash, line) VALUES (?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const l of lines) insert.run(device, l.seq, l.hash, l.line);
    })();
  }

  /** Every journal line held for a device, in order. */
  journalLines(device: string): string[] {
    return (
      this.db.prepare('SELECT line FROM journal_lines WHERE device = ? ORDER BY seq').all(device) as {
        line: string;
      }[]
    ).map((r) => r.line);
  }

  devices(): string[] {
    return (
      this.db
        .prepare('SELECT DISTINCT device FROM journal_lines UNION SELECT DISTINCT device FROM items')
        .all() as { device: string }[]
    ).map((r) => r.device);
  }

  close(): void {
    this.db.close();
  }
}

interface Row {
  device: string;
  id: string;
  unit: string;
  officer: string | null;
  event: string | null;
  kind: string;
  start: string | null;
  end: string | null;
  entry_seq: number;
  entry_hash: string;
  entry_line: string;
  bytes: number;
  sha256: string;
  positions: string;
  stored_at: string;
  receipt: string | null;
}

function fromRow(r: Row): StoredItem {
  return {
    device: r.device,
    id: r.id,
    unit: r.unit,
    officer: r.officer,
    event: r.event,
    kind: r.kind,
    start: r.start,
    end: r.end,
    entrySeq: r.entry_seq,
    entryHash: r.entry_hash,
    entryLine: r.entry_line,
    bytes: r.bytes,
    sha256: r.sha256,
    positions: r.positions,
    storedAt: r.stored_at,
    receipt: r.receipt,
  };
}

function fsyncPath(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
