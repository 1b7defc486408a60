/**
 * What the journal says was sealed: the evidence file and spool file of every segment and photo
 * entry, and the evidence files journaled as orphans. Read by recovery and by `recorder verify`.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { JournalEntry } from '../../protocol/journal-entry.ts';
import { PHOTO_KIND, SEGMENT_KIND } from './sealer.ts';
import {
  EVIDENCE_ORPHAN_KIND,
  EVIDENCE_UNFINISHED_KIND,
  UPLOAD_RECEIPT_KIND,
} from '../../protocol/upload.ts';

/**
 * Kind of the entry the uploader writes when a gateway's signed receipt arrives; `body.file` names
 * the evidence file, which may then be deleted locally (DESIGN.md "Uploads").
 */
export { UPLOAD_RECEIPT_KIND };

/** Kind of the entry a mark press writes during an event; `body.event` names the event (issue 6). */
export const MARK_KIND = 'mark';

/** Kind of the entry that recovery writes for an evidence file that was never journaled. */
export { EVIDENCE_ORPHAN_KIND };
/** An unfinished seal kept because its plaintext was gone (a power cut emptied the RAM spool). */
export { EVIDENCE_UNFINISHED_KIND };

export interface SealedItem {
  seq: number;
  /** 1-based journal line */
  line: number;
  kind: string;
  spool: string;
  bytes: number;
  sha256: string;
  mediaType: string;
  evidence: { file: string; bytes: number; sha256: string };
  entry: JournalEntry;
}

export interface SealedIndex {
  items: SealedItem[];
  byEvidenceFile: Map<string, SealedItem>;
  /** evidence files journaled as orphans (complete files left by a crash before their entry) */
  orphans: Map<string, { bytes: number; sha256: string; line: number; seq: number; time: string }>;
  /** unfinished seals kept as found, under a `.unfinished` name, because their plaintext was gone */
  unfinished: Map<string, { bytes: number; sha256: string; line: number }>;
  /** evidence files a gateway has receipted: their local copy may be gone */
  receipted: Set<string>;
  /** events with at least one `mark` entry (issue 6: they upload first) */
  marked: Set<string>;
  entries: number;
}

export async function readSealedIndex(journalPath: string): Promise<SealedIndex> {
  const index: SealedIndex = {
    items: [],
    byEvidenceFile: new Map(),
    orphans: new Map(),
    unfinished: new Map(),
    receipted: new Set(),
    marked: new Set(),
    entries: 0,
  };
  let stream;
  try {
    stream = createReadStream(journalPath);
    await new Promise<void>((resolve, reject) => {
      stream!.once('open', () => resolve());
      stream!.once('error', reject);
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return index;
    throw error;
  }
  let line = 0;
  for await (const text of createInterface({ input: stream, crlfDelay: Infinity })) {
    line++;
    let entry: JournalEntry;
    try {
      entry = JSON.parse(text) as JournalEntry;
    } catch {
      continue; // the chain verifier reports bad lines; the index only collects what parses
    }
    if (typeof entry !== 'object' || entry === null || typeof entry.body !== 'object' || entry.body === null)
      continue;
    index.entries++;
    const b = entry.body as Record<string, unknown>;
    if (entry.kind === SEGMENT_KIND || entry.kind === PHOTO_KIND) {
      const ev = b.evidence as Record<string, unknown> | undefined;
      if (!ev || typeof ev.file !== 'string') continue;
      const item: SealedItem = {
        seq: entry.seq,
        line,
        kind: entry.kind,
        spool: String(b.spool ?? ''),
        bytes: Number(b.bytes),
        sha256: String(b.sha256),
        mediaType: String(b.mediaType ?? ''),
        evidence: { file: ev.file, bytes: Number(ev.bytes), sha256: String(ev.sha256) },
        entry,
      };
      index.items.push(item);
      index.byEvidenceFile.set(ev.file, item);
    } else if (entry.kind === UPLOAD_RECEIPT_KIND && typeof b.file === 'string') {
      index.receipted.add(b.file);
    } else if (entry.kind === MARK_KIND && typeof b.event === 'string' && b.event !== '') {
      index.marked.add(b.event);
    } else if (entry.kind === EVIDENCE_ORPHAN_KIND && typeof b.file === 'string') {
      index.orphans.set(b.file, {
        bytes: Number(b.bytes),
        sha256: String(b.sha256),
        line,
        seq: entry.seq,
        time: entry.time,
      });
    } else if (entry.kind === EVIDENCE_UNFINISHED_KIND && typeof b.file === 'string') {
      index.unfinished.set(b.file, { bytes: Number(b.bytes), sha256: String(b.sha256), line });
    }
  }
  return index;
}
