import test, { type ExecutionContext } from 'ava';
import { chmodSync, cpSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { JournalWriter } from '../../device/journal-writer.ts';
import { loadOrCreateSigningKey } from '../../device/keys.ts';
import { Sealer } from '../../device/sealing/sealer.ts';
import { verifyState } from '../../device/sealing/verify-state.ts';
import { statePaths } from '../../device/state-paths.ts';
import { StateStore } from '../../device/state-store.ts';
import { runRecorder } from '../helpers/cli.ts';
import { makeJpeg, makeTsClip, testCenterKeys } from '../helpers/media.ts';
import { sealMeta } from '../helpers/sealing.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';

interface Built {
  root: string;
  centerKey: string;
  originals: Map<string, Buffer>;
  files: string[];
}

/** A device state dir with two sealed clips and one photo, as the device leaves it. */
async function buildState(dir: string): Promise<Built> {
  const root = join(dir, 'state');
  const paths = statePaths(root);
  const key = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  const journal = await JournalWriter.open({
    path: paths.journal,
    device: 'HN-CS-0001',
    privateKey: key.privateKey,
  });
  const state = await StateStore.open(paths.db);
  await state.setProfile({
    id: 'HN-CS/HN-CS-0001',
    version: 1,
    evidenceDir: paths.evidenceDir,
    spoolDir: join(dir, 'spool'),
  });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(paths.evidenceDir, { recursive: true });
  mkdirSync(join(dir, 'spool'));
  const sealer = new Sealer({
    evidenceDir: paths.evidenceDir,
    journal,
    centerPublicKey: testCenterKeys().publicKey,
    state,
  });
  const originals = new Map<string, Buffer>();
  const files: string[] = [];
  const inputs = [
    [makeTsClip(join(dir, 'spool'), 'a.ts', 20), sealMeta({ segment: 0 })],
    [makeTsClip(join(dir, 'spool'), 'b.ts', 20), sealMeta({ segment: 1 })],
    [makeJpeg(join(dir, 'spool'), 'p.jpg'), sealMeta({ event: 'PHOTO-1', mediaType: 'image/jpeg' })],
  ] as const;
  for (const [path, meta] of inputs) {
    const bytes = readFileSync(path);
    const { evidencePath } = await sealer.seal(path, meta);
    originals.set(evidencePath.slice(paths.evidenceDir.length + 1).replace(/\.rse$/, ''), bytes);
    files.push(evidencePath);
  }
  await journal.close();
  const centerKey = join(dir, 'center.key.pem');
  writeFileSync(centerKey, testCenterKeys().privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, {
    mode: 0o600,
  });
  return { root, centerKey, originals, files };
}

function copyState(
  t: ExecutionContext,
  built: Built,
): { root: string; paths: ReturnType<typeof statePaths> } {
  const root = join(tempDir(t), 'state');
  cpSync(built.root, root, { recursive: true });
  const paths = statePaths(root);
  // the copy's state file still names the original's evidence dir: point it at the copy
  const db = JSON.parse(readFileSync(paths.db, 'utf8'));
  db.profile.evidenceDir = paths.evidenceDir;
  writeFileSync(paths.db, JSON.stringify(db));
  return { root, paths };
}

test('verify and decrypt a clean state dir through the CLI', async (t) => {
  needPrograms('gst-launch-1.0', 'ffprobe');
  const built = await buildState(tempDir(t));
  const r = await runRecorder(['verify', '--state', built.root, '--center-key', built.centerKey, '--json']);
  t.is(r.code, 0, r.stdout + r.stderr);
  const report = JSON.parse(r.stdout);
  t.like(report, { ok: true, entries: 3, segments: 3, decrypted: 3, problems: [] });

  const out = join(tempDir(t), 'out');
  const d = await runRecorder([
    'decrypt',
    '--state',
    built.root,
    '--center-key',
    built.centerKey,
    '--out',
    out,
  ]);
  t.is(d.code, 0, d.stdout + d.stderr);
  for (const [name, bytes] of built.originals) t.deepEqual(readFileSync(join(out, name)), bytes, name);

  // a center key readable by others is refused
  chmodSync(built.centerKey, 0o644);
  const loose = await runRecorder(['verify', '--state', built.root, '--center-key', built.centerKey]);
  t.is(loose.code, 2);
  t.regex(loose.stderr, /KEY_PERMISSIONS/);
});

test('verify reports a corrupted, a missing and an unjournaled evidence file, and a tampered or cut journal', async (t) => {
  needPrograms('gst-launch-1.0', 'ffprobe');
  const built = await buildState(tempDir(t));
  const key = testCenterKeys().privateKey;
  const clean = await verifyState(built.root, { centerPrivateKey: key });
  t.true(clean.ok, JSON.stringify(clean.problems));

  // corrupted evidence file: one ciphertext bit
  {
    const { root, paths } = copyState(t, built);
    const file = join(paths.evidenceDir, 'EV-20261122T100000Z_00001.ts.rse');
    const bytes = readFileSync(file);
    bytes[bytes.length - 500]! ^= 0x10;
    chmodSync(file, 0o644);
    writeFileSync(file, bytes);
    const r = await verifyState(root, { centerPrivateKey: key });
    t.false(r.ok);
    t.deepEqual(
      r.problems.map((p) => [p.code, p.file]),
      [['EVIDENCE_MISMATCH', 'EV-20261122T100000Z_00001.ts.rse']],
    );
    t.is(r.decrypted, 2);
  }
  // missing evidence file, and a file nobody journaled
  {
    const { root, paths } = copyState(t, built);
    unlinkSync(join(paths.evidenceDir, 'PHOTO-1_00000.jpg.rse'));
    writeFileSync(join(paths.evidenceDir, 'stray.ts.rse'), 'x');
    const r = await verifyState(root);
    t.deepEqual(r.problems.map((p) => p.code).sort(), ['EVIDENCE_MISSING', 'EVIDENCE_UNJOURNALED']);
    t.is(r.problems.find((p) => p.code === 'EVIDENCE_MISSING')!.line, 3);
  }
  // an orphan (journaled, uploaded like any item) gone without a receipt
  {
    const { root, paths } = copyState(t, built);
    const key = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
    const journal = await JournalWriter.open({
      path: paths.journal,
      device: 'HN-CS-0001',
      privateKey: key.privateKey,
    });
    await journal.append('evidence-orphan', {
      file: 'EV-lost_00000.ts.rse',
      bytes: 1,
      sha256: 'a'.repeat(64),
    });
    await journal.close();
    const r = await verifyState(root);
    t.deepEqual(
      r.problems.map((p) => [p.code, p.file]),
      [['EVIDENCE_MISSING', 'EV-lost_00000.ts.rse']],
    );
  }
  // tampered journal: one journaled hash edited
  {
    const { root, paths } = copyState(t, built);
    const lines = readFileSync(paths.journal, 'utf8').split('\n');
    lines[0] = lines[0]!.replace(/"officer":"OF-0042"/, '"officer":"OF-9999"');
    writeFileSync(paths.journal, lines.join('\n'));
    const r = await verifyState(root);
    const codes = r.problems.map((p) => `${p.code}@${p.line}`);
    t.true(codes.includes('JOURNAL_BAD_SIGNATURE@1'), codes.join());
    t.true(codes.includes('JOURNAL_BAD_PREV@2'), codes.join());
  }
  // the last line cut off: the known head in the state file catches it
  {
    const { root, paths } = copyState(t, built);
    const lines = readFileSync(paths.journal, 'utf8').trimEnd().split('\n');
    writeFileSync(paths.journal, `${lines.slice(0, -1).join('\n')}\n`);
    const r = await verifyState(root);
    const codes = r.problems.map((p) => p.code).sort();
    t.deepEqual(codes, ['EVIDENCE_UNJOURNALED', 'JOURNAL_TRUNCATED']);
  }
  // a temp file from an interrupted seal
  {
    const { root, paths } = copyState(t, built);
    writeFileSync(join(paths.evidenceDir, '.X_00000.ts.tmp-99-abcdef01'), 'partial');
    const r = await verifyState(root);
    t.deepEqual(
      r.problems.map((p) => p.code),
      ['EVIDENCE_INCOMPLETE'],
    );
  }
});

test('with the center key, media that does not demux is reported (ffprobe)', async (t) => {
  needPrograms('ffprobe');
  const dir = tempDir(t);
  const root = join(dir, 'state');
  const paths = statePaths(root);
  const key = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  const journal = await JournalWriter.open({
    path: paths.journal,
    device: 'HN-CS-0001',
    privateKey: key.privateKey,
  });
  t.teardown(() => journal.close());
  const { mkdirSync } = await import('node:fs');
  mkdirSync(paths.evidenceDir, { recursive: true });
  const sealer = new Sealer({
    evidenceDir: paths.evidenceDir,
    journal,
    centerPublicKey: testCenterKeys().publicKey,
  });
  const junk = join(dir, 'junk.ts');
  writeFileSync(junk, randomBytes(20_000));
  await sealer.seal(junk, sealMeta());
  const r = await verifyState(root, { centerPrivateKey: testCenterKeys().privateKey });
  t.deepEqual(
    r.problems.map((p) => p.code),
    ['MEDIA_DEMUX_FAILED'],
  );
  t.is(r.decrypted, 0);
  rmSync(junk, { force: true });
});

test('verify of a corrupted state through the CLI exits 1 and prints each problem with its code', async (t) => {
  needPrograms('gst-launch-1.0');
  const built = await buildState(tempDir(t));
  unlinkSync(built.files[0]!);
  const r = await runRecorder(['verify', '--state', built.root]);
  t.is(r.code, 1);
  t.regex(r.stdout, /FAILED, 3 journal entries, 3 sealed items/);
  t.regex(r.stdout, /EVIDENCE_MISSING \(EV-20261122T100000Z_00000\.ts\.rse, journal line 1\)/);
});
