/**
 * `recorder verify` and `recorder decrypt`: check a device state directory the way an auditor
 * would. The journal chain against the stored known head; every evidence file against its entry
 * (size and SHA-256 of the ciphertext); evidence files without an entry and entries without a file;
 * and, with the center's private key, decryption (GCM tag), the plaintext SHA-256, and that the
 * media demuxes (ffprobe).
 */
import { spawn } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRecorderError, type ErrorCode } from '../../protocol/errors.ts';
import { EVIDENCE_SUFFIX } from '../../protocol/evidence-format.ts';
import { verifyJournalFile } from '../journal-reader.ts';
import { loadPublicKey } from '../keys.ts';
import { RAM_DIR, statePaths } from '../state-paths.ts';
import { StateStore } from '../state-store.ts';
import { decryptEvidence, hashFile } from './evidence-file.ts';
import { readSealedIndex, type SealedItem } from './journal-index.ts';

export interface VerifyProblem {
  code: ErrorCode;
  message: string;
  /** evidence file name, when the problem is about one */
  file?: string;
  /** 1-based journal line, when the problem is about one */
  line?: number;
}

export interface VerifyReport {
  ok: boolean;
  /** journal entries */
  entries: number;
  /** sealed items (segments and photos) in the journal */
  segments: number;
  /** sealed items decrypted and checked (with the center key) */
  decrypted: number;
  /** sealed items no longer on the device because a gateway receipted them (checked there) */
  receipted: number;
  problems: VerifyProblem[];
}

export interface VerifyStateOptions {
  /** the center's RSA private key: also decrypt, hash and demux every item */
  centerPrivateKey?: KeyObject;
  /** Default: the profile's evidence dir recorded in the state file, else STATE/evidence. */
  evidenceDir?: string;
  /** Default `ffprobe`. */
  ffprobe?: string;
}

const TEMP_NAME = /^\..+\.tmp-\d+-[0-9a-f]+$/;

export async function verifyState(root: string, options: VerifyStateOptions = {}): Promise<VerifyReport> {
  const paths = statePaths(root);
  const publicKey = loadPublicKey(paths.publicKey);
  const state = await StateStore.peek(paths.db);
  const evidenceDir = options.evidenceDir ?? state.profile?.evidenceDir ?? paths.evidenceDir;
  const problems: VerifyProblem[] = [];

  const chain = await verifyJournalFile(paths.journal, {
    publicKey,
    ...(state.journalHead ? { knownHead: state.journalHead } : {}),
  });
  for (const p of chain.problems) problems.push({ code: p.code, message: p.message, line: p.line });

  const index = await readSealedIndex(paths.journal);
  const files = existsSync(evidenceDir) ? readdirSync(evidenceDir).sort() : [];
  const present = new Set(files);
  for (const name of files) {
    if (TEMP_NAME.test(name)) {
      problems.push({
        code: 'EVIDENCE_INCOMPLETE',
        message:
          `${name} is an unfinished seal; at its next start the device seals the spool file again and ` +
          'removes it, or keeps it as .unfinished when the spool is empty',
        file: name,
      });
      continue;
    }
    const item = index.byEvidenceFile.get(name);
    const orphan = index.orphans.get(name) ?? index.unfinished.get(name);
    if (!item && !orphan) {
      problems.push({
        code: 'EVIDENCE_UNJOURNALED',
        message: `${name} is in the evidence dir but no journal entry describes it`,
        file: name,
      });
      continue;
    }
    const expected = item ? item.evidence : orphan!;
    const actual = await hashFile(join(evidenceDir, name));
    if (actual.bytes !== expected.bytes || actual.sha256 !== expected.sha256) {
      problems.push({
        code: 'EVIDENCE_MISMATCH',
        message:
          `${name}: ${actual.bytes} bytes, SHA-256 ${actual.sha256}; the journal (line ${item?.line ?? orphan!.line}) ` +
          `says ${expected.bytes} bytes, ${expected.sha256}`,
        file: name,
        line: item?.line ?? orphan!.line,
      });
      if (item) item.evidence = { ...item.evidence, sha256: '' }; // do not decrypt it below
    }
  }
  for (const item of index.items) {
    if (!present.has(item.evidence.file) && !index.receipted.has(item.evidence.file)) {
      problems.push({
        code: 'EVIDENCE_MISSING',
        message: `${item.evidence.file} (journal seq ${item.seq}) is missing and no gateway receipted it`,
        file: item.evidence.file,
        line: item.line,
      });
    }
  }
  // Orphans travel too, and are deleted only after their receipt; unfinished seals never leave.
  for (const [file, kept] of [...index.orphans, ...index.unfinished]) {
    if (!present.has(file) && !index.receipted.has(file)) {
      problems.push({
        code: 'EVIDENCE_MISSING',
        message: `${file} (journaled at line ${kept.line}) is missing and no gateway receipted it`,
        file,
        line: kept.line,
      });
    }
  }

  let decrypted = 0;
  if (options.centerPrivateKey) {
    const scratch = mkdtempSync(join(existsSync(RAM_DIR) ? RAM_DIR : tmpdir(), 'recorder-verify-'));
    try {
      for (const item of index.items) {
        if (!present.has(item.evidence.file) || item.evidence.sha256 === '') continue;
        const out = join(scratch, plaintextName(item.evidence.file));
        const problem = await checkPlaintext(join(evidenceDir, item.evidence.file), out, item, options);
        if (problem) problems.push(problem);
        else decrypted++;
        rmSync(out, { force: true });
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return {
    ok: problems.length === 0,
    entries: chain.entries,
    segments: index.items.length,
    decrypted,
    receipted: index.items.filter((item) => index.receipted.has(item.evidence.file)).length,
    problems,
  };
}

/** `EV_00003.ts.rse` → `EV_00003.ts` */
export function plaintextName(evidenceFile: string): string {
  return evidenceFile.endsWith(EVIDENCE_SUFFIX)
    ? evidenceFile.slice(0, -EVIDENCE_SUFFIX.length)
    : `${evidenceFile}.bin`;
}

async function checkPlaintext(
  evidencePath: string,
  out: string,
  item: SealedItem,
  options: VerifyStateOptions,
): Promise<VerifyProblem | null> {
  const file = item.evidence.file;
  try {
    const plain = await decryptEvidence(evidencePath, options.centerPrivateKey!, out);
    if (plain.sha256 !== item.sha256 || plain.bytes !== item.bytes) {
      return {
        code: 'EVIDENCE_PLAINTEXT_MISMATCH',
        message: `${file} decrypts to ${plain.bytes} bytes, SHA-256 ${plain.sha256}; journaled ${item.bytes}, ${item.sha256}`,
        file,
        line: item.line,
      };
    }
  } catch (error) {
    if (!isRecorderError(error)) throw error;
    return { code: error.code, message: error.detail, file, line: item.line };
  }
  const demux = await probeMedia(out, item.mediaType, options.ffprobe ?? 'ffprobe');
  return demux ? { code: 'MEDIA_DEMUX_FAILED', message: `${file}: ${demux}`, file, line: item.line } : null;
}

/** ffprobe container names expected for each media type the recorder writes */
const EXPECTED_FORMAT: Record<string, { format: RegExp; codec?: RegExp }> = {
  'video/mp2t': { format: /mpegts/ },
  // ffprobe reads a .jpg through its image2 demuxer; the codec says it is really JPEG
  'image/jpeg': { format: /jpeg|image2/, codec: /mjpeg/ },
  'video/x-matroska': { format: /matroska/ },
  'audio/x-matroska': { format: /matroska/ },
  'video/mp4': { format: /mp4/ },
  'audio/mp4': { format: /mp4/ },
};

/**
 * Demuxes every packet with ffprobe. Why it fails, or null. Decoder warnings are not failures: a
 * segment recovered after a power cut ends with a torn frame by design (it keeps every complete one).
 */
export async function probeMedia(
  path: string,
  mediaType: string,
  ffprobe = 'ffprobe',
): Promise<string | null> {
  const args = [
    '-v',
    'error',
    '-count_packets',
    '-show_entries',
    'format=format_name:stream=codec_name,nb_read_packets',
  ];
  const result = await new Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }>(
    (done) => {
      const child = spawn(ffprobe, [...args, '-of', 'json', path], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d));
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('error', (error) => done({ code: null, stdout, stderr, error }));
      child.on('close', (code) => done({ code, stdout, stderr }));
    },
  );
  if (result.error) return `${ffprobe} did not run (${result.error.message}); install ffmpeg`;
  if (result.code !== 0) return `ffprobe failed: ${result.stderr.trim().split('\n').at(-1) ?? ''}`;
  let info: {
    format?: { format_name?: string };
    streams?: { codec_name?: string; nb_read_packets?: string }[];
  };
  try {
    info = JSON.parse(result.stdout) as typeof info;
  } catch {
    return 'ffprobe printed no JSON';
  }
  const packets = (info.streams ?? []).reduce((n, s) => n + Number(s.nb_read_packets ?? 0), 0);
  if (packets === 0) return 'no media packets';
  const expected = EXPECTED_FORMAT[mediaType];
  const format = info.format?.format_name ?? '';
  if (expected && !expected.format.test(format))
    return `journaled as ${mediaType} but the container is ${format}`;
  const codecs = (info.streams ?? []).map((s) => s.codec_name ?? '').join(',');
  if (expected?.codec && !expected.codec.test(codecs))
    return `journaled as ${mediaType} but the codec is ${codecs}`;
  return null;
}

export interface DecryptStateReport {
  written: string[];
  problems: VerifyProblem[];
}

/** Writes the plaintext of every sealed item present into `outDir` (named like the evidence, minus `.rse`). */
export async function decryptState(
  root: string,
  centerPrivateKey: KeyObject,
  outDir: string,
  options: { evidenceDir?: string } = {},
): Promise<DecryptStateReport> {
  const paths = statePaths(root);
  const state = await StateStore.peek(paths.db);
  const evidenceDir = options.evidenceDir ?? state.profile?.evidenceDir ?? paths.evidenceDir;
  const index = await readSealedIndex(paths.journal);
  mkdirSync(outDir, { recursive: true });
  const report: DecryptStateReport = { written: [], problems: [] };
  for (const item of index.items) {
    const source = join(evidenceDir, item.evidence.file);
    if (!existsSync(source)) {
      if (!index.receipted.has(item.evidence.file)) {
        report.problems.push({
          code: 'EVIDENCE_MISSING',
          message: `${item.evidence.file} is missing`,
          file: item.evidence.file,
          line: item.line,
        });
      }
      continue;
    }
    const out = join(outDir, plaintextName(item.evidence.file));
    try {
      const plain = await decryptEvidence(source, centerPrivateKey, out);
      if (plain.sha256 !== item.sha256) {
        report.problems.push({
          code: 'EVIDENCE_PLAINTEXT_MISMATCH',
          message: `${item.evidence.file} decrypts to SHA-256 ${plain.sha256}, journaled ${item.sha256}`,
          file: item.evidence.file,
          line: item.line,
        });
      }
      report.written.push(out);
    } catch (error) {
      if (!isRecorderError(error)) throw error;
      report.problems.push({
        code: error.code,
        message: error.detail,
        file: item.evidence.file,
        line: item.line,
      });
    }
  }
  return report;
}
