/**
 * Seals closed spool files (segments, photos) into encrypted evidence (DESIGN.md "Sealing").
 *
 * One streaming pass over the plaintext: SHA-256 of the plaintext (on a worker thread for large
 * files), AES-256-GCM under a fresh random key, SHA-256 of the evidence file as it is written. The
 * key is wrapped to the evidence center's RSA key (RSA-OAEP-SHA256); the format is in
 * protocol/evidence-format.ts and README "Sealed evidence files".
 *
 * Order, so that a crash at any point leaves the spool file or a complete sealed and journaled
 * item, never neither:
 *  1. write `.NAME.tmp-…` in the evidence dir, fsync it;
 *  2. link it to its final name (never replaces an existing file), unlink the temp, fsync the dir;
 *  3. append the signed journal entry (fsync'd by the writer);
 *  4. record the journal head and the upload item in the state store;
 *  5. delete the plaintext from the spool.
 * A crash before 2 leaves a temp file (not evidence; recovery removes it) and the spool file; before
 * 3 an unjournaled evidence file (recovery journals it as an orphan and keeps it) and the spool
 * file, which is sealed again; before 5 a journaled item and its spool file, which recovery
 * recognises by name, size and SHA-256 and deletes.
 *
 * The sealer never deletes or overwrites an evidence file: only an upload receipt may (DESIGN.md
 * "Storage guard"; a body camera is not a dash camera).
 */
import {
  createCipheriv,
  createHash,
  createPublicKey,
  randomBytes,
  type Hash,
  type KeyObject,
} from 'node:crypto';
import { existsSync, statfsSync } from 'node:fs';
import { link, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { GnssFix } from '../../hardware/gnss.ts';
import { RecorderError, isRecorderError } from '../../protocol/errors.ts';
import {
  EVIDENCE_SUFFIX,
  buildEvidenceHeader,
  centerKeyProblem,
  wrapContentKey,
  EVIDENCE_IV_BYTES,
  EVIDENCE_KEY_BYTES,
  EVIDENCE_TAG_BYTES,
} from '../../protocol/evidence-format.ts';
import type { JournalEntry, JsonObject } from '../../protocol/journal-entry.ts';
import { fsyncDir } from '../fs-durable.ts';
import type { StateStore } from '../state-store.ts';
import { ParallelSha256 } from './parallel-sha256.ts';

export type SealReason = 'prerecord' | 'recording' | 'recovered';

/** A GNSS fix as the journal holds it: strings only, so `jq -cS` reproduces the bytes. */
export interface JournalFix {
  time: string;
  mode: string;
  lat: string;
  lon: string;
}

export interface SealMeta {
  /** event id; segments of one event share it */
  event: string;
  /** sequence of this segment inside its event, from 0 */
  segment: number;
  reason: SealReason;
  start: Date;
  end: Date;
  /** pipeline running time of the first and last frame, ms */
  runningStartMs: number;
  runningEndMs: number;
  officer: string;
  /** the GNSS fixes inside the segment */
  fixes: readonly (GnssFix | JournalFix)[];
  /** `video/mp2t`, `image/jpeg`, `audio/mpeg`…; image/* is journaled as kind `photo` */
  mediaType: string;
}

/** The body of a `segment` or `photo` journal entry. */
export interface SealedBody {
  event: string;
  segment: number;
  reason: SealReason;
  /** ISO 8601 UTC */
  start: string;
  end: string;
  runningStartMs: number;
  runningEndMs: number;
  /** plaintext size and SHA-256 */
  bytes: number;
  sha256: string;
  /** the sealed evidence file (name inside the evidence dir), its size and SHA-256 */
  evidence: { file: string; bytes: number; sha256: string };
  officer: string;
  fixes: JournalFix[];
  mediaType: string;
  /** the spool file's name; recovery matches it together with bytes and sha256 */
  spool: string;
  recovered: boolean;
}

export interface SealResult {
  entry: JournalEntry;
  evidencePath: string;
  /** false when the state store could not be written (recovery re-queues from the journal) */
  stateUpdated: boolean;
}

/** What the sealer needs of the journal: JournalWriter has it. */
export interface JournalAppender {
  append(kind: string, body: JsonObject): Promise<JournalEntry>;
  readonly head: { nextSeq: number; prev: string };
}

export interface SealerOptions {
  evidenceDir: string;
  journal: JournalAppender;
  /** the evidence center's RSA public key (≥ 3072 bits), PEM or KeyObject */
  centerPublicKey: KeyObject | string;
  /** records the journal head and the upload queue; optional for tools and tests */
  state?: StateStore;
  /** HN 23: 24 h, SX 19: 48 h. Default 24. */
  uploadDeadlineHours?: number;
  /** Default `() => new Date()`. */
  now?: () => Date;
  /** read/encrypt/write chunk size. Default 1 MiB. */
  chunkBytes?: number;
  /** files at least this large hash their plaintext on a worker thread. Default 8 MiB. */
  parallelHashMinBytes?: number;
  /**
   * Free space that must remain after the evidence file, for file system metadata. Default 64 KiB.
   * (Tests set it negative to reach the ENOSPC-while-writing path.)
   */
  spaceMarginBytes?: number;
}

export const SEGMENT_KIND = 'segment';
export const PHOTO_KIND = 'photo';

export class Sealer {
  readonly evidenceDir: string;
  private readonly centerKey: KeyObject;
  private readonly now: () => Date;
  private readonly chunkBytes: number;
  private readonly parallelMin: number;
  private queue: Promise<unknown> = Promise.resolve();
  /** names given before, kept or not: a name is the item's id at every gateway */
  private readonly usedNames = new Set<string>();

  constructor(private readonly options: SealerOptions) {
    this.evidenceDir = options.evidenceDir;
    this.centerKey =
      typeof options.centerPublicKey === 'string'
        ? createPublicKey(options.centerPublicKey)
        : options.centerPublicKey;
    const problem = centerKeyProblem(this.centerKey);
    if (problem) throw new RecorderError('KEY_INVALID', `the center public key ${problem}`);
    this.now = options.now ?? (() => new Date());
    this.chunkBytes = options.chunkBytes ?? 1 << 20;
    this.parallelMin = options.parallelHashMinBytes ?? 8 << 20;
  }

  /**
   * Names of evidence journaled earlier (recovery reads them from the journal at start). None is
   * given again, though its file is gone after its receipt: event ids come from the wall clock, and
   * a clock set back would repeat one, and with it a name the station holds another item under.
   */
  rememberNames(names: Iterable<string>): void {
    for (const name of names) this.usedNames.add(name);
  }

  /**
   * Seals one closed spool file; seals run one at a time in call order. Throws SPOOL_NOT_FOUND,
   * STORAGE_FULL (nothing written, the plaintext stays in the spool) or SEAL_FAILED.
   */
  seal(spoolPath: string, meta: SealMeta, recovered = false): Promise<SealResult> {
    const result = this.queue.then(() => this.sealOne(spoolPath, meta, recovered));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async sealOne(spoolPath: string, meta: SealMeta, recovered: boolean): Promise<SealResult> {
    // Bad metadata is refused before a byte is written: it could not be journaled afterwards.
    const metaProblem = sealMetaProblem(meta);
    if (metaProblem) throw sealFailed(spoolPath, new Error(`bad metadata: ${metaProblem}`));
    let input: FileHandle;
    try {
      input = await open(spoolPath, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new RecorderError('SPOOL_NOT_FOUND', `spool file ${spoolPath} does not exist`, { spoolPath });
      }
      throw sealFailed(spoolPath, error);
    }
    let sealed: Sealed;
    try {
      sealed = await this.encrypt(input, spoolPath, meta);
    } finally {
      await input.close();
    }

    const kind = meta.mediaType.startsWith('image/') ? PHOTO_KIND : SEGMENT_KIND;
    const body: SealedBody = {
      event: meta.event,
      segment: meta.segment,
      reason: meta.reason,
      start: meta.start.toISOString(),
      end: meta.end.toISOString(),
      runningStartMs: Math.round(meta.runningStartMs),
      runningEndMs: Math.round(meta.runningEndMs),
      bytes: sealed.plainBytes,
      sha256: sealed.plainSha256,
      evidence: { file: sealed.file, bytes: sealed.evidenceBytes, sha256: sealed.evidenceSha256 },
      officer: meta.officer,
      fixes: meta.fixes.map(journalFix),
      mediaType: meta.mediaType,
      spool: basename(spoolPath),
      recovered,
    };
    let entry: JournalEntry;
    try {
      entry = await this.options.journal.append(kind, body as unknown as JsonObject);
    } catch (error) {
      // The evidence file stays (never deleted); recovery journals it as an orphan and the
      // plaintext, still in the spool, is sealed again.
      throw sealFailed(spoolPath, error);
    }
    // The journal is the record from here on: a failing state write (a full disk) must not keep
    // the plaintext for a second seal; recovery re-queues from the journal at the next start.
    let stateUpdated = true;
    try {
      await this.updateState(entry, kind, sealed, recovered);
    } catch {
      stateUpdated = false;
    }
    await unlink(spoolPath);
    try {
      fsyncDir(dirname(spoolPath));
    } catch {
      // the spool is a RAM file system: a lost unlink only means recovery deletes it again
    }
    return { entry, evidencePath: join(this.evidenceDir, sealed.file), stateUpdated };
  }

  private async updateState(
    entry: JournalEntry,
    kind: string,
    sealed: Sealed,
    recovered: boolean,
  ): Promise<void> {
    const state = this.options.state;
    if (!state) return;
    const head = this.options.journal.head;
    const sealedAt = this.now();
    const hours = this.options.uploadDeadlineHours ?? 24;
    await state.setJournalHead({ seq: head.nextSeq - 1, hash: head.prev });
    await state.enqueueUpload({
      file: sealed.file,
      sha256: sealed.evidenceSha256,
      bytes: sealed.evidenceBytes,
      kind,
      seq: entry.seq,
      sealedAt: sealedAt.toISOString(),
      deadline: new Date(sealedAt.getTime() + hours * 3_600_000).toISOString(),
      event: (entry.body as { event?: string }).event ?? null,
    });
    await state.count(recovered ? 'recovered' : kind === PHOTO_KIND ? 'photos' : 'segments');
  }

  private async encrypt(input: FileHandle, spoolPath: string, meta: SealMeta): Promise<Sealed> {
    const plainBytes = (await input.stat()).size;
    const contentKey = randomBytes(EVIDENCE_KEY_BYTES);
    const iv = randomBytes(EVIDENCE_IV_BYTES);
    const header = buildEvidenceHeader(wrapContentKey(contentKey, this.centerKey), iv);
    const evidenceBytes = header.length + plainBytes + EVIDENCE_TAG_BYTES;
    this.checkSpace(evidenceBytes, spoolPath);

    const base = evidenceBaseName(meta, spoolPath);
    const tmp = join(this.evidenceDir, `.${base}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    const cipher = createCipheriv('aes-256-gcm', contentKey, iv);
    cipher.setAAD(header);
    const evidenceHash = createHash('sha256').update(header);
    const parallel = plainBytes >= this.parallelMin ? new ParallelSha256() : null;
    const plainHash: Hash | null = parallel ? null : createHash('sha256');
    let out: FileHandle | null = null;
    let next: Promise<{ buffer: Buffer; bytesRead: number }> | null = null;
    try {
      out = await open(tmp, 'wx', 0o600);
      await writeAll(out, header);
      let position = 0;
      // Chunk buffers are reused, not allocated per chunk: the single-thread path alternates two,
      // the worker hands each one back when it has hashed it. allocUnsafeSlow gives buffers that
      // own their memory, so they can be transferred to the worker.
      const spare: Buffer[] = [];
      const take = () => spare.pop() ?? parallel?.returned.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes);
      next = readChunk(input, take(), position);
      // One write in flight while the next chunk is read, encrypted and hashed. Its error is
      // caught at once and rethrown at the next wait, so it is never an unhandled rejection.
      let writing: Promise<void> = Promise.resolve();
      let writeError: unknown = null;
      const drain = async () => {
        await writing;
        if (writeError) throw writeError;
      };
      for (;;) {
        const { buffer, bytesRead } = await next;
        if (bytesRead === 0) break;
        position += bytesRead;
        next = readChunk(input, take(), position); // overlap the next read with this chunk
        const plain = buffer.subarray(0, bytesRead);
        const cipherText = cipher.update(plain);
        if (parallel) await parallel.update(buffer, bytesRead);
        else {
          plainHash!.update(plain);
          spare.push(buffer);
        }
        evidenceHash.update(cipherText);
        await drain();
        const target = out;
        writing = writeAll(target, cipherText).catch((error: unknown) => {
          writeError = error;
        });
      }
      await drain();
      cipher.final();
      const tag = cipher.getAuthTag();
      evidenceHash.update(tag);
      await writeAll(out, tag);
      if (position !== plainBytes) {
        throw new Error(
          `${spoolPath} changed size while sealing (${plainBytes} → ${position}); is it closed?`,
        );
      }
      // Write-once: read-only before the file gets its evidence name.
      await out.chmod(0o444);
      await out.sync();
      await out.close();
      out = null;
      const plainSha256 = parallel ? await parallel.digest() : plainHash!.digest('hex');
      const file = await this.publish(tmp, base);
      return {
        file,
        plainBytes,
        plainSha256,
        evidenceBytes,
        evidenceSha256: evidenceHash.digest('hex'),
      };
    } catch (error) {
      next?.catch(() => undefined); // a prefetch still in flight: its result no longer matters
      await parallel?.abort();
      await out?.close().catch(() => undefined);
      // The temp file is unfinished ciphertext of plaintext still in the spool: not evidence.
      await unlink(tmp).catch(() => undefined);
      if (isRecorderError(error)) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT')
        throw storageFull(this.evidenceDir, spoolPath, evidenceBytes);
      throw sealFailed(spoolPath, error);
    }
  }

  /**
   * Gives the finished temp file its final name without ever replacing an existing file or
   * giving a name twice: `EVENT_00003.ts.rse`, else `EVENT_00003-1.ts.rse`, `-2`, … (characters an
   * upload id may hold).
   */
  private async publish(tmp: string, base: string): Promise<string> {
    const ext = extname(base);
    const stem = base.slice(0, base.length - ext.length);
    for (let n = 0; ; n++) {
      const file = n === 0 ? `${base}${EVIDENCE_SUFFIX}` : `${stem}-${n}${ext}${EVIDENCE_SUFFIX}`;
      if (this.usedNames.has(file)) continue;
      const target = join(this.evidenceDir, file);
      try {
        await link(tmp, target);
        await unlink(tmp);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') continue;
        // File systems without hard links (FAT on an SD card): check, then rename. One sealer
        // per evidence dir, so nothing can create the name in between.
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error;
        if (existsSync(target)) continue;
        await rename(tmp, target);
      }
      fsyncDir(this.evidenceDir);
      this.usedNames.add(file);
      return file;
    }
  }

  /** Refuses before writing a byte when the file cannot fit. */
  private checkSpace(evidenceBytes: number, spoolPath: string): void {
    let free: number;
    try {
      const s = statfsSync(this.evidenceDir);
      free = s.bavail * s.bsize;
    } catch (error) {
      throw sealFailed(spoolPath, error);
    }
    if (free < evidenceBytes + (this.options.spaceMarginBytes ?? 64 * 1024))
      throw storageFull(this.evidenceDir, spoolPath, evidenceBytes, free);
  }
}

interface Sealed {
  file: string;
  plainBytes: number;
  plainSha256: string;
  evidenceBytes: number;
  evidenceSha256: string;
}

async function readChunk(
  input: FileHandle,
  buffer: Buffer,
  position: number,
): Promise<{ buffer: Buffer; bytesRead: number }> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await input.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return { buffer, bytesRead: filled };
}

async function writeAll(out: FileHandle, data: Buffer): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await out.write(data, done, data.length - done);
    done += bytesWritten;
  }
}

/** Why `meta` cannot be journaled, or null. */
export function sealMetaProblem(meta: SealMeta): string | null {
  if (typeof meta.event !== 'string' || meta.event === '') return 'event must be a non-empty string';
  if (!Number.isSafeInteger(meta.segment) || meta.segment < 0)
    return 'segment must be a non-negative integer';
  if (!['prerecord', 'recording', 'recovered'].includes(meta.reason)) return `reason ${String(meta.reason)}`;
  for (const key of ['start', 'end'] as const) {
    if (!(meta[key] instanceof Date) || Number.isNaN(meta[key].getTime()))
      return `${key} must be a valid Date`;
  }
  for (const key of ['runningStartMs', 'runningEndMs'] as const) {
    if (!Number.isFinite(meta[key]) || Math.abs(meta[key]) > Number.MAX_SAFE_INTEGER)
      return `${key} must be a number`;
  }
  if (typeof meta.officer !== 'string' || meta.officer === '') return 'officer must be a non-empty string';
  if (typeof meta.mediaType !== 'string' || !/^[a-z]+\/[a-z0-9.+-]+$/.test(meta.mediaType)) {
    return 'mediaType must be a media type such as video/mp2t';
  }
  if (!Array.isArray(meta.fixes)) return 'fixes must be an array';
  return null;
}

/** `EVENT_00003.ts`: the event, the segment number and the spool file's extension. */
export function evidenceBaseName(meta: SealMeta, spoolPath: string): string {
  const event = meta.event.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 80) || 'event';
  const ext = extname(spoolPath)
    .replace(/[^A-Za-z0-9.]/g, '')
    .slice(0, 10);
  return `${event}_${String(meta.segment).padStart(5, '0')}${ext}`;
}

/** Positions as decimal strings with 7 places (≈ 1 cm): no fractional numbers in entries. */
export function journalFix(fix: GnssFix | JournalFix): JournalFix {
  if (typeof fix.mode === 'string') return fix as JournalFix;
  const f = fix as GnssFix;
  return {
    time: f.time ?? '',
    mode: String(f.mode),
    lat: f.lat === null ? '' : f.lat.toFixed(7),
    lon: f.lon === null ? '' : f.lon.toFixed(7),
  };
}

function storageFull(dir: string, spoolPath: string, needed: number, free?: number): RecorderError {
  return new RecorderError(
    'STORAGE_FULL',
    `no room in ${dir} for ${basename(spoolPath)} (${needed} bytes${free === undefined ? '' : `, ${free} free`}); ` +
      'nothing was deleted and the plaintext stays in the spool: dock the recorder to upload evidence',
    { dir, spoolPath, needed, ...(free === undefined ? {} : { free }) },
  );
}

function sealFailed(spoolPath: string, error: unknown): RecorderError {
  return new RecorderError(
    'SEAL_FAILED',
    `cannot seal ${spoolPath}: ${(error as Error).message}; the plaintext stays in the spool`,
    { spoolPath, ...(isRecorderError(error) ? { cause: error.code } : {}) },
  );
}
