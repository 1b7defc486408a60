/**
 * Start-up recovery (DESIGN.md "Sealing"): every spool file without a journal entry is sealed
 * with `recovered: true`. A spool file counts as sealed only when an entry names it AND has its
 * size and plaintext SHA-256: a capture restart may reuse a spool file name, and a name alone
 * would then lose the new plaintext.
 *
 * Also: a temp file left in the evidence dir by an interrupted seal is removed (its plaintext is
 * still in the spool), and a complete evidence file that never got its entry (a crash between
 * rename and journal) is journaled as `evidence-orphan` and kept — evidence is never deleted.
 */
import { readdir, rename, stat, unlink } from 'node:fs/promises';
import { fsyncDir } from '../fs-durable.ts';
import { extname, join } from 'node:path';
import { EVIDENCE_SUFFIX } from '../../protocol/evidence-format.ts';
import type { JournalEntry, JsonObject } from '../../protocol/journal-entry.ts';
import { hashFile } from './evidence-file.ts';
import { EVIDENCE_ORPHAN_KIND, EVIDENCE_UNFINISHED_KIND, readSealedIndex } from './journal-index.ts';
import type { StateStore } from '../state-store.ts';
import type { JournalAppender, SealMeta, SealResult, Sealer } from './sealer.ts';

export interface RecoverSpoolOptions {
  sealer: Sealer;
  /** the journal the sealer appends to (read to find what was sealed) */
  journal: JournalAppender & { readonly path: string };
  /** officer to name in recovered entries (the profile's first officer) */
  officer: string;
  /**
   * Metadata of a recovered file. Default: event `recovered-<start time>`, segments numbered in
   * file-name order, start = end = the file's mtime, running times 0, no fixes, media type from
   * the extension.
   */
  metaFor?: (file: string, index: number, mtime: Date) => SealMeta;
  /** Default `() => new Date()`. */
  now?: () => Date;
  /**
   * When given: journaled items whose evidence file is still here but missing from the upload
   * queue (a crash between journal and state update) are queued again, and the known journal head
   * is brought up to date.
   */
  state?: StateStore;
  /** for re-queued items; HN 23: 24 h. Default 24. */
  uploadDeadlineHours?: number;
}

export interface RecoveryReport {
  /** spool files sealed now, with recovered: true */
  resealed: SealResult[];
  /** spool files already sealed and journaled (crash before the delete): deleted now */
  alreadySealed: string[];
  /** unjournaled complete evidence files, journaled now as evidence-orphan and kept */
  orphans: string[];
  /** unfinished temp files removed from the evidence dir (their plaintext is in the spool) */
  tempsRemoved: string[];
  /** unfinished temp files kept, renamed `….unfinished` and journaled: their plaintext was gone */
  tempsKept: string[];
  /** evidence files put back into the upload queue */
  requeued: string[];
  /** spool files that could not be sealed now (left in the spool), with the error code */
  failed: { file: string; code: string; message: string }[];
}

export const MEDIA_TYPES: Record<string, string> = {
  '.ts': 'video/mp2t',
  '.mkv': 'video/x-matroska',
  '.mp4': 'video/mp4',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.aac': 'audio/aac',
  '.m4a': 'audio/mp4',
  '.mka': 'audio/x-matroska',
  '.ogg': 'audio/ogg',
};

export function mediaTypeOf(file: string): string {
  return MEDIA_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

const TEMP_NAME = /^\..+\.tmp-\d+-[0-9a-f]+$/;
export const UNFINISHED_SUFFIX = '.unfinished';

export async function recoverSpool(spoolDir: string, options: RecoverSpoolOptions): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    resealed: [],
    alreadySealed: [],
    orphans: [],
    tempsRemoved: [],
    tempsKept: [],
    requeued: [],
    failed: [],
  };
  const evidenceDir = options.sealer.evidenceDir;
  const index = await readSealedIndex(options.journal.path);
  options.sealer.rememberNames([...index.byEvidenceFile.keys(), ...index.orphans.keys()]);

  // A temp file is an unfinished seal. Its plaintext is still in the spool (seals run one at a
  // time, and a spool file goes only after its entry is journaled) and is sealed again below, so
  // the temp goes. A power cut empties the RAM spool: then the temp may be the only copy of those
  // bytes, and it is kept as found, under a name that says so, and journaled.
  const spoolFiles = (await listFiles(spoolDir)).filter((n) => !n.startsWith('.')).sort();
  for (const name of await listFiles(evidenceDir)) {
    const path = join(evidenceDir, name);
    if (TEMP_NAME.test(name) && spoolFiles.length > 0) {
      await unlink(path);
      report.tempsRemoved.push(name);
    } else if (TEMP_NAME.test(name)) {
      const kept = `${name.slice(1)}${UNFINISHED_SUFFIX}`;
      const { sha256, bytes } = await hashFile(path);
      // Journaled first: a crash before the rename finds the temp again and journals it again.
      await options.journal.append(EVIDENCE_UNFINISHED_KIND, {
        file: kept,
        bytes,
        sha256,
        note: 'an unfinished seal found with the spool emptied (a power cut); kept as found, not uploaded',
      });
      await rename(path, join(evidenceDir, kept));
      fsyncDir(evidenceDir);
      report.tempsKept.push(kept);
    } else if (
      name.endsWith(EVIDENCE_SUFFIX) &&
      !index.byEvidenceFile.has(name) &&
      !index.orphans.has(name)
    ) {
      const { sha256, bytes } = await hashFile(path);
      const body: JsonObject = {
        file: name,
        bytes,
        sha256,
        note:
          spoolFiles.length > 0
            ? 'sealed evidence file without its entry (interrupted seal); uploaded as it is, and its spool file sealed again'
            : 'sealed evidence file without its entry, found with the spool emptied (a power cut); uploaded as it is',
      };
      const entry = await options.journal.append(EVIDENCE_ORPHAN_KIND, body);
      index.orphans.set(name, { bytes, sha256, line: 0, seq: entry.seq, time: entry.time });
      options.sealer.rememberNames([name]);
      report.orphans.push(name);
    }
  }

  const sealedBySpool = new Map<string, { bytes: number; sha256: string }[]>();
  for (const item of index.items) {
    const list = sealedBySpool.get(item.spool) ?? [];
    list.push({ bytes: item.bytes, sha256: item.sha256 });
    sealedBySpool.set(item.spool, list);
  }

  const state = options.state;
  if (state) {
    const queued = new Set(state.data.uploadQueue.map((i) => i.file));
    const present = new Set(await listFiles(evidenceDir));
    const hours = options.uploadDeadlineHours ?? 24;
    // An orphan is uploaded like any item, under its orphan entry (which names file, size and
    // hash): the station stores it, the center checks that it decrypts.
    for (const [file, orphan] of index.orphans) {
      if (queued.has(file) || !present.has(file) || index.receipted.has(file)) continue;
      await state.enqueueUpload({
        file,
        sha256: orphan.sha256,
        bytes: orphan.bytes,
        kind: EVIDENCE_ORPHAN_KIND,
        seq: orphan.seq,
        sealedAt: orphan.time,
        deadline: new Date(Date.parse(orphan.time) + hours * 3_600_000).toISOString(),
        event: null,
      });
      report.requeued.push(file);
    }
    for (const item of index.items) {
      if (queued.has(item.evidence.file) || !present.has(item.evidence.file)) continue;
      await state.enqueueUpload({
        file: item.evidence.file,
        sha256: item.evidence.sha256,
        bytes: item.evidence.bytes,
        kind: item.kind,
        seq: item.seq,
        sealedAt: item.entry.time,
        deadline: new Date(Date.parse(item.entry.time) + hours * 3_600_000).toISOString(),
        event: eventOf(item.entry),
      });
      report.requeued.push(item.evidence.file);
    }
    // Issue 6: a crash between a `mark` entry and the state write must not cost the event its
    // priority, and items of a state file from before events were queued get theirs.
    await state.reconcileEvents((file) => {
      const sealed = index.byEvidenceFile.get(file);
      return sealed ? eventOf(sealed.entry) : null;
    }, index.marked);
  }

  const now = (options.now ?? (() => new Date()))();
  const event = `recovered-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}`;
  let n = 0;
  for (const name of spoolFiles) {
    const path = join(spoolDir, name);
    const info = await stat(path);
    if (!info.isFile()) continue;
    const known = sealedBySpool.get(name);
    if (known) {
      const { sha256, bytes } = await hashFile(path);
      if (known.some((k) => k.sha256 === sha256 && k.bytes === bytes)) {
        await unlink(path);
        report.alreadySealed.push(name);
        continue;
      }
    }
    const meta: SealMeta = options.metaFor?.(name, n, info.mtime) ?? {
      event,
      segment: n,
      reason: 'recovered',
      start: info.mtime,
      end: info.mtime,
      runningStartMs: 0,
      runningEndMs: 0,
      officer: options.officer,
      fixes: [],
      mediaType: mediaTypeOf(name),
    };
    n++;
    try {
      report.resealed.push(await options.sealer.seal(path, { ...meta, reason: 'recovered' }, true));
    } catch (error) {
      const e = error as { code?: string; message: string };
      report.failed.push({ file: name, code: e.code ?? 'SEAL_FAILED', message: e.message });
    }
  }
  if (state && options.journal.head.nextSeq > 0) {
    await state.setJournalHead({ seq: options.journal.head.nextSeq - 1, hash: options.journal.head.prev });
  }
  return report;
}

function eventOf(entry: JournalEntry): string | null {
  const event = (entry.body as { event?: unknown }).event;
  return typeof event === 'string' && event !== '' ? event : null;
}

async function listFiles(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
