/**
 * The station's (or center's) evidence store (DESIGN.md "The gateway's evidence store"): encrypted
 * items on disk, write-once and content-addressed, indexed in an embedded SQL database (R9: by
 * unit, device, officer, event, time, position, marks). An item is stored once; storing it again
 * returns what is already there.
 *
 * better-sqlite3: a synchronous, well-kept SQLite binding; Node 20 has no built-in SQLite.
 */
import { createHash, type KeyObject } from 'node:crypto';
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
  unlinkSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { canonicalize } from '../protocol/canonical-json.ts';
import { RecorderError, isRecorderError } from '../protocol/errors.ts';
import type { JournalEntry } from '../protocol/journal-entry.ts';
import { checkCenterReceipt } from './center-receipt.ts';

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

/**
 * What happened to an item after it was stored: the center's ingest check (issue 6 item 4), the
 * station's relay to the center, and the purge of its object file after the relay.
 */
export interface ItemLifecycle {
  /** center role: the plaintext was decrypted and hashed at ingest */
  ingest: { checkedAt: string; ok: boolean; plainSha256: string } | null;
  /** station: when the center's receipt was checked and recorded */
  relayedAt: string | null;
  /** the center's signed receipt, JSON */
  centerReceipt: string | null;
  /** the last relay attempt that failed, e.g. `UPLOAD_REFUSED: …` (cleared once relayed) */
  relayError: string | null;
  /** the object file was deleted after the relay (the index row and both receipts stay) */
  purgedAt: string | null;
}

/** A device's evidence key as first seen, and the certificate that bound it. */
export interface KnownDevice {
  device: string;
  publicKeyPem: string;
  certPem: string | null;
  firstSeen: string;
}

export interface ItemFilter {
  /** a center holds the items of several units */
  unit?: string;
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
CREATE TABLE IF NOT EXISTS devices (
  device TEXT PRIMARY KEY,
  public_key TEXT NOT NULL,
  cert TEXT,
  first_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal_relay (
  device TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL,
  relayed_at TEXT NOT NULL,
  receipt TEXT
);
-- The last line ever appended for each device, kept apart from journal_lines: a journal whose
-- tail was deleted ends before it (R18). Devices journaled before 2026-12-05 get one at their
-- next batch.
CREATE TABLE IF NOT EXISTS journal_heads (
  device TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
`;

/** Columns added after the first release of the index; added in place to an older file. */
const LIFECYCLE_COLUMNS: [string, string][] = [
  ['ingest_checked_at', 'TEXT'],
  ['ingest_ok', 'INTEGER'],
  ['ingest_plain_sha256', 'TEXT'],
  ['relayed_at', 'TEXT'],
  ['center_receipt', 'TEXT'],
  ['relay_error', 'TEXT'],
  ['purged_at', 'TEXT'],
  // 1 when the last relay failure was the item's own (refused, damaged), not the center's absence
  ['relay_error_own', 'INTEGER'],
];

export class EvidenceStore {
  private readonly db: Database.Database;

  constructor(readonly root: string) {
    mkdirSync(join(root, 'objects'), { recursive: true });
    mkdirSync(join(root, 'incoming'), { recursive: true });
    this.db = new Database(join(root, 'index.sqlite'));
    this.db.pragma('journal_mode = WAL');
    // FULL: a committed index row survives a power cut, like the file it points to.
    this.db.pragma('synchronous = FULL');
    // `recorder evidence …` opens the index while the gateway writes to it.
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    const have = new Set(
      (this.db.prepare('PRAGMA table_info(items)').all() as { name: string }[]).map((c) => c.name),
    );
    for (const [name, type] of LIFECYCLE_COLUMNS)
      if (!have.has(name)) this.db.exec(`ALTER TABLE items ADD COLUMN ${name} ${type}`);
    // The center's journal receipt, kept since 2026-12-04; rows relayed before have none.
    const relayColumns = this.db.prepare('PRAGMA table_info(journal_relay)').all() as { name: string }[];
    if (!relayColumns.some((c) => c.name === 'receipt'))
      this.db.exec('ALTER TABLE journal_relay ADD COLUMN receipt TEXT');
    this.db.exec('CREATE INDEX IF NOT EXISTS items_relay ON items (relayed_at, stored_at)');
  }

  /** Where an incoming upload is written before it is verified and stored (incomingFileName()). */
  incomingPath(device: string, id: string): string {
    return join(this.root, 'incoming', incomingFileName(device, id));
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
  async put(
    file: string,
    item: Omit<StoredItem, 'storedAt' | 'receipt'>,
    storedAt: string,
    ingest?: { checkedAt: string; plainSha256: string },
  ): Promise<StoredItem> {
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
    // A new objects/xx folder is on disk only once its parent is fsync'd too.
    if (mkdirSync(dirname(target), { recursive: true })) fsyncPath(dirname(dirname(target)));
    if (existsSync(target) && (await sha256OfFile(target)) === item.sha256) {
      // The object is here without its index row: a gateway killed between the rename below and the
      // INSERT (SIGKILL, power cut), and the device sent the item again. Keep the object, drop the
      // copy just received, so incoming/ holds only uploads in progress. That gateway may have died
      // before the object's folder was fsync'd: it is, and the object, before the row says stored.
      fsyncPath(target);
      fsyncPath(dirname(target));
      unlinkSync(file);
      fsyncPath(dirname(file));
    } else {
      // (An object that no longer hashes right is replaced by the verified bytes just received.)
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
           bytes, sha256, positions, stored_at, receipt, ingest_checked_at, ingest_ok, ingest_plain_sha256)
         VALUES (@device, @id, @unit, @officer, @event, @kind, @start, @end, @entrySeq, @entryHash, @entryLine,
           @bytes, @sha256, @positions, @storedAt, @receipt, @ingestAt, @ingestOk, @ingestSha)`,
      )
      .run({
        ...stored,
        ingestAt: ingest?.checkedAt ?? null,
        ingestOk: ingest ? 1 : null,
        ingestSha: ingest?.plainSha256 ?? null,
      });
    return stored;
  }

  setReceipt(device: string, id: string, receipt: string): void {
    this.db
      .prepare('UPDATE items SET receipt = ? WHERE device = ? AND id = ? AND receipt IS NULL')
      .run(receipt, device, id);
  }

  list(filter: ItemFilter = {}): StoredItem[] {
    const conditions: [keyof ItemFilter, string][] = [
      ['unit', 'unit = @unit'],
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

  lifecycle(device: string, id: string): ItemLifecycle | null {
    const r = this.db
      .prepare(
        `SELECT ingest_checked_at, ingest_ok, ingest_plain_sha256, relayed_at, center_receipt, relay_error, purged_at
         FROM items WHERE device = ? AND id = ?`,
      )
      .get(device, id) as LifecycleRow | undefined;
    if (!r) return null;
    return {
      ingest:
        r.ingest_checked_at === null
          ? null
          : {
              checkedAt: r.ingest_checked_at,
              ok: r.ingest_ok === 1,
              plainSha256: r.ingest_plain_sha256 ?? '',
            },
      relayedAt: r.relayed_at,
      centerReceipt: r.center_receipt,
      relayError: r.relay_error,
      purgedAt: r.purged_at,
    };
  }

  /** Station: how much the center has not receipted yet (items, bytes, the oldest one's storedAt). */
  relayBacklog(): { items: number; bytes: number; oldestStoredAt: string | null; journals: number } {
    const r = this.db
      .prepare(
        'SELECT COUNT(*) AS items, COALESCE(SUM(bytes), 0) AS bytes, MIN(stored_at) AS oldest FROM items WHERE relayed_at IS NULL AND receipt IS NOT NULL',
      )
      .get() as { items: number; bytes: number; oldest: string | null };
    // Devices whose journal the center has not receipted up to the last line held here. Each head
    // is one index lookup per known device (a line is kept only for a device remembered first):
    // grouping all of journal_lines took 105 ms for 1.5 million lines, on every gateway status.
    const j = this.db
      .prepare(
        `SELECT COUNT(*) AS n FROM
           (SELECT d.device, (SELECT MAX(seq) FROM journal_lines l WHERE l.device = d.device) AS head FROM devices d) h
         LEFT JOIN journal_relay r ON r.device = h.device
         WHERE h.head IS NOT NULL AND (r.device IS NULL OR r.seq < h.head OR r.receipt IS NULL)`,
      )
      .get() as { n: number };
    return { items: r.items, bytes: r.bytes, oldestStoredAt: r.oldest, journals: j.n };
  }

  /**
   * Station: receipted items the center has not receipted yet, oldest first; those whose last
   * relay failed for a reason of their own come after the rest, so that a batch of items that keep
   * failing (a damaged object, one the center refuses) never keeps newer ones out of every round.
   * Items that failed only because the center was away keep their place, oldest first.
   */
  unrelayed(limit = 100): StoredItem[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM items WHERE relayed_at IS NULL AND receipt IS NOT NULL
           ORDER BY COALESCE(relay_error_own, 0), stored_at, device, id LIMIT ?`,
        )
        .all(limit) as Row[]
    ).map(fromRow);
  }

  /** Records the center's checked receipt: the item is relayed. */
  markRelayed(device: string, id: string, centerReceipt: string, at: string): void {
    this.db
      .prepare(
        'UPDATE items SET relayed_at = ?, center_receipt = ?, relay_error = NULL, relay_error_own = NULL WHERE device = ? AND id = ? AND relayed_at IS NULL',
      )
      .run(at, centerReceipt, device, id);
  }

  /**
   * Records why the item's relay failed; `own` when the failure is the item's own (the center
   * refused it, its object is damaged), not the center's absence (no answer, not connected).
   */
  setRelayError(device: string, id: string, error: string | null, own = true): void {
    this.db
      .prepare('UPDATE items SET relay_error = ?, relay_error_own = ? WHERE device = ? AND id = ?')
      .run(error, error === null ? null : own ? 1 : 0, device, id);
  }

  /** Relayed items whose object file is still here and whose relay is older than `before` (ISO). */
  purgeable(before: string): StoredItem[] {
    return (
      this.db
        .prepare(
          'SELECT * FROM items WHERE relayed_at IS NOT NULL AND relayed_at <= ? AND purged_at IS NULL ORDER BY relayed_at',
        )
        .all(before) as Row[]
    ).map(fromRow);
  }

  /**
   * Deletes the object file of a relayed item and records when. The index row, the station's
   * receipt and the center's receipt stay: the item's history is never purged. An object shared by
   * another item that is not purgeable yet stays on disk.
   *
   * The center's receipt is checked with `centerReceiptKey` first, not `relayed_at`: an item marked
   * relayed without a receipt that names it, signed by the center, keeps its object (it may be the
   * only copy) and STORE_PURGE_REFUSED is thrown.
   */
  purgeObject(device: string, id: string, at: string, centerReceiptKey: KeyObject): boolean {
    const item = this.get(device, id);
    const life = this.lifecycle(device, id);
    if (!item || !life?.relayedAt || life.purgedAt) return false;
    try {
      checkCenterReceipt(item, life.centerReceipt, centerReceiptKey);
    } catch (error) {
      throw new RecorderError(
        'STORE_PURGE_REFUSED',
        `${device}/${id} is marked relayed, but ${isRecorderError(error) ? error.detail : (error as Error).message}; its object stays`,
        { device, id },
      );
    }
    const others = this.db
      .prepare(
        'SELECT COUNT(*) AS n FROM items WHERE sha256 = ? AND NOT (device = ? AND id = ?) AND purged_at IS NULL',
      )
      .get(item.sha256, device, id) as { n: number };
    const path = this.objectPath(item.sha256);
    if (others.n === 0 && existsSync(path)) {
      chmodSync(path, 0o644);
      unlinkSync(path);
      fsyncPath(dirname(path));
    }
    this.db.prepare('UPDATE items SET purged_at = ? WHERE device = ? AND id = ?').run(at, device, id);
    return true;
  }

  /**
   * Remembers a device's evidence key (and the certificate that bound it) the first time it is
   * seen, so the journal chain can still be checked when the device is long gone. Returns the key
   * held, which differs from `publicKeyPem` when another key was seen first.
   */
  rememberDevice(device: string, publicKeyPem: string, certPem: string | null, at: string): KnownDevice {
    this.db
      .prepare('INSERT OR IGNORE INTO devices (device, public_key, cert, first_seen) VALUES (?, ?, ?, ?)')
      .run(device, publicKeyPem, certPem, at);
    if (certPem)
      this.db
        .prepare('UPDATE devices SET cert = ? WHERE device = ? AND cert IS NULL AND public_key = ?')
        .run(certPem, device, publicKeyPem);
    return this.knownDevice(device)!;
  }

  knownDevice(device: string): KnownDevice | null {
    const r = this.db
      .prepare('SELECT device, public_key, cert, first_seen FROM devices WHERE device = ?')
      .get(device) as
      { device: string; public_key: string; cert: string | null; first_seen: string } | undefined;
    return r
      ? { device: r.device, publicKeyPem: r.public_key, certPem: r.cert, firstSeen: r.first_seen }
      : null;
  }

  /**
   * Station: the head of a device's journal relayed to the center, with the center's journal
   * receipt for it (JSON; null for a head relayed before journal receipts), or null.
   */
  relayedJournalHead(device: string): { seq: number; hash: string; receipt: string | null } | null {
    const r = this.db.prepare('SELECT seq, hash, receipt FROM journal_relay WHERE device = ?').get(device) as
      { seq: number; hash: string; receipt: string | null } | undefined;
    return r ?? null;
  }

  setRelayedJournalHead(
    device: string,
    head: { seq: number; hash: string },
    receipt: string,
    at: string,
  ): void {
    this.db
      .prepare(
        `INSERT INTO journal_relay (device, seq, hash, relayed_at, receipt) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (device) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
           relayed_at = excluded.relayed_at, receipt = excluded.receipt`,
      )
      .run(device, head.seq, head.hash, at, receipt);
  }

  /** Journal lines of a device with their stored hashes, in order. */
  journalRows(device: string): { seq: number; hash: string; line: string }[] {
    return this.db
      .prepare('SELECT seq, hash, line FROM journal_lines WHERE device = ? ORDER BY seq')
      .all(device) as { seq: number; hash: string; line: string }[];
  }

  /** Re-hashes one stored object: null when it matches, else what is wrong. */
  async checkObject(item: StoredItem): Promise<string | null> {
    const path = this.objectPath(item.sha256);
    if (!existsSync(path)) return 'STORE_OBJECT_MISSING';
    const size = statSync(path).size;
    if (size !== item.bytes) return 'STORE_OBJECT_SIZE';
    return (await sha256OfFile(path)) === item.sha256 ? null : 'STORE_OBJECT_HASH';
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

  /** Appends verified journal lines in one transaction, and records the new head. */
  appendJournal(device: string, lines: { seq: number; hash: string; line: string }[]): void {
    const insert = this.db.prepare('INSERT INTO journal_lines (device, seq, hash, line) VALUES (?, ?, ?, ?)');
    const head = this.db.prepare(
      `INSERT INTO journal_heads (device, seq, hash) VALUES (?, ?, ?)
       ON CONFLICT (device) DO UPDATE SET seq = excluded.seq, hash = excluded.hash WHERE excluded.seq > seq`,
    );
    this.db.transaction(() => {
      for (const l of lines) insert.run(device, l.seq, l.hash, l.line);
      const last = lines.at(-1);
      if (last) head.run(device, last.seq, last.hash);
    })();
  }

  /** The last journal line ever appended for a device (journal_heads), or null. */
  recordedJournalHead(device: string): { seq: number; hash: string } | null {
    const r = this.db.prepare('SELECT seq, hash FROM journal_heads WHERE device = ?').get(device) as
      { seq: number; hash: string } | undefined;
    return r ?? null;
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
        .prepare(
          'SELECT DISTINCT device FROM journal_lines UNION SELECT DISTINCT device FROM items UNION SELECT device FROM devices',
        )
        .all() as { device: string }[]
    ).map((r) => r.device);
  }

  close(): void {
    this.db.close();
  }
}

interface LifecycleRow {
  ingest_checked_at: string | null;
  ingest_ok: number | null;
  ingest_plain_sha256: string | null;
  relayed_at: string | null;
  center_receipt: string | null;
  relay_error: string | null;
  purged_at: string | null;
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

/**
 * The name of an item's file in incoming/: `{device}+{id}.part`, each part with every byte
 * outside [A-Za-z0-9_.-] percent-encoded (none is in the device ids the CA issues and the ids an
 * offer may carry, protocol/topics.ts and protocol/upload.ts). '+' is in neither part, so no two
 * (device, id) pairs share a file. The name was `{device}--{id}.part` until 2026-12-05, and both
 * may hold `--`: device HN-CS-0001 offering x--E1-0.ts.enc wrote into the upload of device
 * HN-CS-0001--x's E1-0.ts.enc. A file of that naming (no '+') is never opened again; its item is
 * sent again from 0.
 */
export function incomingFileName(device: string, id: string): string {
  return `${encodeNamePart(device)}+${encodeNamePart(id)}.part`;
}

function encodeNamePart(text: string): string {
  return text.replace(/[^A-Za-z0-9_.-]/gu, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

/**
 * The index columns of an item as they follow from its device-signed sealing entry (R9: found by
 * officer, event, kind, time span and positions). The receiver stores them so; verify compares
 * them (positions as canonical JSON, since rows from before 2026-12-08 keep the fixes in the key
 * order they arrived in).
 */
export function indexColumnsOf(
  entry: JournalEntry,
): Pick<StoredItem, 'officer' | 'event' | 'kind' | 'start' | 'end' | 'positions'> {
  const body = (typeof entry.body === 'object' && entry.body !== null ? entry.body : {}) as Record<
    string,
    unknown
  >;
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  const fixes = Array.isArray(body.fixes) ? body.fixes : [];
  let positions: string;
  try {
    positions = canonicalize(fixes);
  } catch {
    positions = JSON.stringify(fixes);
  }
  return {
    officer: str(body.officer),
    event: str(body.event),
    kind: entry.kind,
    start: str(body.start),
    end: str(body.end),
    positions,
  };
}

/** SHA-256 (hex) of a whole file, read as a stream. */
async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function fsyncPath(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
