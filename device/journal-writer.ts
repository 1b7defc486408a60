/**
 * The one writer of a device journal: append-only JSON Lines, each entry fsync'd before its
 * promise resolves. A second writer on the same file is refused. A torn tail left by a power cut
 * is moved, byte for byte, into a new `.torn-OFFSET` file beside the journal (`.torn-OFFSET-2`, `-3`,
 * … when a tail was torn at that offset before; none is ever overwritten) and the move is itself
 * journaled, so no byte is ever dropped silently. When the wall clock has gone back since the
 * last entry (an RTC reset, a clock set back by GNSS or NTP), a `clock-step` entry saying so comes
 * first: a journal whose times went back without one is refused by every verifier.
 */
import type { KeyObject } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { CLOCK_STEP_KIND } from '../protocol/journal-chain.ts';
import { RecorderError } from '../protocol/errors.ts';
import {
  EMPTY_HEAD,
  entryLine,
  headAfter,
  sha256Hex,
  signEntry,
  type JournalEntry,
  type JournalHead,
  type JsonObject,
} from '../protocol/journal-entry.ts';
import { writeNewFileDurable } from './fs-durable.ts';

export const TORN_TAIL_KIND = 'journal-torn-tail';

export interface JournalWriterOptions {
  path: string;
  device: string;
  privateKey: KeyObject;
  /** Wall clock. Default: `() => new Date()`. */
  now?: () => Date;
}

const heldInThisProcess = new Set<string>();

export class JournalWriter {
  private handle: FileHandle | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: Error | null = null;
  private closed = false;
  private readonly now: () => Date;

  private constructor(
    private readonly options: JournalWriterOptions,
    private currentHead: JournalHead,
    /** wall-clock time of the last entry (ms), null for an empty journal */
    private lastTimeMs: number | null,
    private readonly lockPath: string,
    private readonly tornTail: TornTail | null,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /** Opens (creating if needed) the journal for appending. Throws JOURNAL_LOCKED or JOURNAL_CORRUPT. */
  static async open(options: JournalWriterOptions): Promise<JournalWriter> {
    mkdirSync(dirname(options.path), { recursive: true });
    const lockPath = acquireLock(options.path);
    let writer: JournalWriter;
    try {
      const tornTail = moveTornTail(options.path);
      const last = readLast(options.path);
      writer = new JournalWriter(options, last.head, last.timeMs, lockPath, tornTail);
      writer.handle = await open(options.path, 'a', 0o644);
    } catch (error) {
      releaseLock(options.path, lockPath);
      throw error;
    }
    if (writer.tornTail) await writer.append(TORN_TAIL_KIND, { ...writer.tornTail });
    return writer;
  }

  get head(): JournalHead {
    return this.currentHead;
  }

  get path(): string {
    return this.options.path;
  }

  /** Signs and appends one entry; resolves once it is on disk (fsync'd). */
  append(kind: string, body: JsonObject): Promise<JournalEntry> {
    const time = this.now();
    const result = this.queue.then(() => this.writeOne(kind, body, time));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async writeOne(kind: string, body: JsonObject, time: Date): Promise<JournalEntry> {
    if (this.closed || !this.handle) {
      throw new RecorderError('JOURNAL_WRITE_FAILED', `${this.options.path} is closed`);
    }
    if (this.failure) {
      throw new RecorderError(
        'JOURNAL_WRITE_FAILED',
        `an earlier write to ${this.options.path} failed (${this.failure.message}); reopen the journal`,
      );
    }
    let head = this.currentHead;
    let text = '';
    const sign = (kind: string, body: JsonObject): JournalEntry => {
      const entry = signEntry(
        head,
        { device: this.options.device, kind, body, time },
        this.options.privateKey,
      );
      const line = entryLine(entry);
      text += `${line}\n`;
      head = headAfter(entry, line);
      return entry;
    };
    // The clock went back since the last entry: say so first, in the same write.
    if (this.lastTimeMs !== null && time.getTime() < this.lastTimeMs) {
      sign(CLOCK_STEP_KIND, {
        from: new Date(this.lastTimeMs).toISOString(),
        stepMs: time.getTime() - this.lastTimeMs,
      });
    }
    const entry = sign(kind, body);
    try {
      await this.handle.write(text);
      await this.handle.sync();
    } catch (error) {
      this.failure = error as Error;
      throw new RecorderError(
        'JOURNAL_WRITE_FAILED',
        `cannot append to ${this.options.path}: ${(error as Error).message}`,
        {
          cause: (error as NodeJS.ErrnoException).code,
        },
      );
    }
    this.currentHead = head;
    this.lastTimeMs = time.getTime();
    return entry;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    await this.handle?.close();
    this.handle = null;
    releaseLock(this.options.path, this.lockPath);
  }
}

function acquireLock(path: string): string {
  const lockPath = `${path}.lock`;
  if (heldInThisProcess.has(path)) {
    throw new RecorderError('JOURNAL_LOCKED', `${path} is already open for writing in this process`, {
      path,
    });
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeNewFileDurable(lockPath, `${process.pid}\n`);
      heldInThisProcess.add(path);
      return lockPath;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
    if (Number.isInteger(pid) && pid !== process.pid && processAlive(pid)) {
      throw new RecorderError(
        'JOURNAL_LOCKED',
        `${path} is being written by process ${pid}; only one writer may append to a journal`,
        { path, pid },
      );
    }
    // The lock's owner is gone (a crash or power cut): the lock is stale.
    unlinkSync(lockPath);
  }
  throw new RecorderError('JOURNAL_LOCKED', `cannot take the lock ${lockPath}`, { path });
}

function releaseLock(path: string, lockPath: string): void {
  heldInThisProcess.delete(path);
  try {
    unlinkSync(lockPath);
  } catch {
    // already gone: nothing to release
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Index just past the last '\n' of the file, scanning backwards from `end`. */
function lastNewlineBefore(fd: number, end: number): number {
  const chunk = Buffer.alloc(64 * 1024);
  let pos = end;
  while (pos > 0) {
    const start = Math.max(0, pos - chunk.length);
    const n = readSync(fd, chunk, 0, pos - start, start);
    const i = chunk.subarray(0, n).lastIndexOf(0x0a);
    if (i >= 0) return start + i + 1;
    pos = start;
  }
  return 0;
}

// Type aliases, not interfaces: they must be assignable to JsonObject, the body of an entry.
type TornFile = { file: string; bytes: number; sha256: string };

/** The body of a `journal-torn-tail` entry. */
type TornTail = TornFile & {
  offset: number;
  /** Tails torn earlier at the same offset, oldest first; only when there are any. */
  earlier?: TornFile[];
};

/**
 * Moves the bytes after the last newline into a new `.torn-OFFSET` file and cuts them off. Returns
 * what the journal must record: the newest torn file at the offset the journal now ends at, and
 * any earlier ones there. None of them is journaled yet: an entry naming one lies at or past that
 * offset, so it was torn off too (a second power cut while the first move's entry was appended) or
 * never written (a power cut between the cut and that append). One entry names them all, so a
 * power cut cannot leave some recorded and the rest not.
 */
function moveTornTail(path: string): TornTail | null {
  if (!existsSync(path)) return null;
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).size;
    const offset = lastNewlineBefore(fd, size);
    const kept = tornFilesAt(path, offset);
    if (offset < size) {
      const tail = Buffer.alloc(size - offset);
      readSync(fd, tail, 0, tail.length, offset);
      // Keep the bytes first, then cut them off: a crash in between repeats the same move and finds
      // them kept already, in the newest file. No torn file is ever overwritten.
      const newest = kept.at(-1);
      if (newest === undefined || !sameBytes(newest, tail)) {
        const file = tornFileName(path, offset, kept.length + 1);
        writeNewFileDurable(file, tail);
        kept.push(file);
      }
      ftruncateSync(fd, offset);
      fsyncSync(fd);
    }
    const files = kept.map(tornFileOf);
    const newest = files.pop();
    if (newest === undefined) return null;
    return { offset, ...newest, ...(files.length ? { earlier: files } : {}) };
  } finally {
    closeSync(fd);
  }
}

/** `journal.jsonl.torn-OFFSET`, then `-2`, `-3`, … for later tails torn at the same offset. */
function tornFileName(path: string, offset: number, n: number): string {
  return n === 1 ? `${path}.torn-${offset}` : `${path}.torn-${offset}-${n}`;
}

/** The torn files kept for `offset`, oldest first; they are only ever created in sequence. */
function tornFilesAt(path: string, offset: number): string[] {
  const files: string[] = [];
  for (let n = 1; existsSync(tornFileName(path, offset, n)); n++) files.push(tornFileName(path, offset, n));
  return files;
}

function sameBytes(file: string, bytes: Buffer): boolean {
  return statSync(file).size === bytes.length && readFileSync(file).equals(bytes);
}

function tornFileOf(file: string): TornFile {
  const bytes = readFileSync(file);
  return { file: basename(file), bytes: bytes.length, sha256: sha256Hex(bytes) };
}

/** The head after the journal's last line, and that entry's wall-clock time. */
function readLast(path: string): { head: JournalHead; timeMs: number | null } {
  const empty = { head: EMPTY_HEAD, timeMs: null };
  if (!existsSync(path)) return empty;
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return empty;
    const start = lastNewlineBefore(fd, size - 1);
    const line = Buffer.alloc(size - 1 - start);
    readSync(fd, line, 0, line.length, start);
    let entry: JournalEntry;
    try {
      entry = JSON.parse(line.toString('utf8')) as JournalEntry;
      if (!Number.isSafeInteger(entry.seq)) throw new Error('no seq');
    } catch (error) {
      throw new RecorderError(
        'JOURNAL_CORRUPT',
        `the last line of ${path} is not a journal entry (${(error as Error).message}); ` +
          `run 'recorder journal verify ${path}' and keep the file for inspection`,
        { path },
      );
    }
    const timeMs = Date.parse(entry.time);
    return { head: headAfter(entry, line), timeMs: Number.isNaN(timeMs) ? null : timeMs };
  } finally {
    closeSync(fd);
  }
}
