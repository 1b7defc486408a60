import test from 'ava';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { JournalWriter } from '../../device/journal-writer.ts';
import { loadOrCreateSigningKey } from '../../device/keys.ts';
import { verifyState } from '../../device/sealing/verify-state.ts';
import { statePaths } from '../../device/state-paths.ts';
import { StateStore } from '../../device/state-store.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { verifyJournalFile } from '../../device/journal-reader.ts';
import { readSealedIndex } from '../../device/sealing/journal-index.ts';
import { recoverSpool } from '../../device/sealing/recover-spool.ts';
import { Sealer, type SealedBody } from '../../device/sealing/sealer.ts';
import { Value } from '@sinclair/typebox/value';
import { isRecorderError } from '../../protocol/errors.ts';
import { UploadId } from '../../protocol/upload.ts';
import { sha256Hex } from '../../protocol/journal-entry.ts';
import { makeTsClip, testCenterKeys } from '../helpers/media.ts';
import { deviceKeys, sealingRig, sealMeta } from '../helpers/sealing.ts';

test('recovery seals unjournaled spool files, deletes already-sealed ones, keeps and journals orphans', async (t) => {
  const { dir, spool, evidence, journal, sealer } = await sealingRig(t);

  // 1. sealed and journaled, but the crash came before the spool delete
  const done = makeTsClip(spool, 'seg-00001.ts', 5);
  const keep = join(dir, 'keep.ts');
  copyFileSync(done, keep);
  await sealer.seal(done, sealMeta({ segment: 1 }));
  copyFileSync(keep, done);

  // 2. evidence written and renamed, but the journal append never happened (crash before step 3)
  const orphanSpool = makeTsClip(spool, 'seg-00002.ts', 6);
  const failing = new Sealer({
    evidenceDir: evidence,
    journal: {
      append: () => Promise.reject(new Error('power cut')),
      head: journal.head,
    },
    centerPublicKey: testCenterKeys().publicKey,
  });
  const error = await t.throwsAsync(failing.seal(orphanSpool, sealMeta({ segment: 2 })));
  t.true(isRecorderError(error, 'SEAL_FAILED'));
  t.true(existsSync(orphanSpool), 'the plaintext stays when the journal append fails');

  // 3. a torn temp file from a crash while writing
  writeFileSync(join(evidence, '.EV_00003.ts.tmp-4242-deadbeef'), 'partial');

  // 4. never sealed; and 5. a capture restart reused a sealed file's name with new content
  const fresh = makeTsClip(spool, 'seg-00003.ts', 7);
  const freshBytes = readFileSync(fresh);
  const reusedSpool = makeTsClip(spool, 'seg-00009.ts', 4);
  await sealer.seal(reusedSpool, sealMeta({ segment: 9 }));
  makeTsClip(spool, 'seg-00009.ts', 9);
  const reusedBytes = readFileSync(join(spool, 'seg-00009.ts'));

  const report = await recoverSpool(spool, {
    sealer,
    journal,
    officer: 'OF-0042',
    now: () => new Date('2026-11-22T11:00:00Z'),
  });
  t.deepEqual(report.alreadySealed, ['seg-00001.ts']);
  t.deepEqual(report.orphans, ['EV-20261122T100000Z_00002.ts.rse']);
  t.deepEqual(report.tempsRemoved, ['.EV_00003.ts.tmp-4242-deadbeef']);
  t.deepEqual(report.failed, []);
  const resealed = report.resealed.map((r) => r.entry.body as unknown as SealedBody);
  t.deepEqual(
    resealed.map((b) => b.spool),
    ['seg-00002.ts', 'seg-00003.ts', 'seg-00009.ts'],
  );
  for (const b of resealed) {
    t.true(b.recovered);
    t.is(b.reason, 'recovered');
    t.is(b.event, 'recovered-20261122T110000Z');
  }
  t.is(resealed[1]!.sha256, sha256Hex(freshBytes));
  t.is(resealed[2]!.sha256, sha256Hex(reusedBytes));
  t.deepEqual(readdirSync(spool), [], 'the spool is empty');
  const files = readdirSync(evidence).sort();
  t.true(files.includes('EV-20261122T100000Z_00002.ts.rse'), 'the orphan evidence file is kept');
  t.is(files.filter((f) => f.startsWith('.')).length, 0);

  const index = await readSealedIndex(journal.path);
  t.true(index.orphans.has('EV-20261122T100000Z_00002.ts.rse'));
  // every evidence file is accounted for by an entry or an orphan record
  for (const f of files) t.true(index.byEvidenceFile.has(f) || index.orphans.has(f), f);
  const chain = await verifyJournalFile(journal.path, { publicKey: deviceKeys.publicKey });
  t.true(chain.ok, JSON.stringify(chain.problems));

  // a second recovery finds nothing to do
  const again = await recoverSpool(spool, { sealer, journal, officer: 'OF-0042' });
  t.deepEqual(again, {
    resealed: [],
    alreadySealed: [],
    orphans: [],
    tempsRemoved: [],
    tempsKept: [],
    requeued: [],
    failed: [],
  });
});

test('after a power cut emptied the spool, an unfinished seal is kept as found and journaled, never deleted', async (t) => {
  const { evidence, spool, journal, sealer } = await sealingRig(t);
  const bytes = randomBytes(5000); // ciphertext whose plaintext went with the RAM spool
  writeFileSync(join(evidence, '.EV_00004.ts.tmp-4242-deadbeef'), bytes);
  t.deepEqual(readdirSync(spool), []);
  const report = await recoverSpool(spool, { sealer, journal, officer: 'OF-0042' });
  t.deepEqual(report.tempsRemoved, []);
  t.deepEqual(report.tempsKept, ['EV_00004.ts.tmp-4242-deadbeef.unfinished']);
  t.deepEqual(readdirSync(evidence), ['EV_00004.ts.tmp-4242-deadbeef.unfinished']);
  t.deepEqual(readFileSync(join(evidence, 'EV_00004.ts.tmp-4242-deadbeef.unfinished')), bytes);
  const index = await readSealedIndex(journal.path);
  t.deepEqual(index.unfinished.get('EV_00004.ts.tmp-4242-deadbeef.unfinished'), {
    bytes: 5000,
    sha256: sha256Hex(bytes),
    line: 1,
  });
  const again = await recoverSpool(spool, { sealer, journal, officer: 'OF-0042' });
  t.deepEqual(again.tempsKept, []);
  t.is((await readSealedIndex(journal.path)).entries, 1, 'journaled once');
});

test("a name once sealed is never given again, though its file is gone after its receipt; nor an orphan's", async (t) => {
  const rig = await sealingRig(t);
  const meta = sealMeta({ event: 'HN-CS-0001-20260101T000012Z', segment: 0 });
  const first = await rig.sealer.seal(makeTsClip(rig.spool, 'a.ts', 2), meta);
  rmSync(first.evidencePath); // uploaded, receipted, deleted
  // An orphan left by a crash, of the event's next segment (found by this boot's recovery).
  writeFileSync(join(rig.evidence, 'HN-CS-0001-20260101T000012Z_00001.ts.rse'), randomBytes(100));
  // A restart, then the clock is back at that second: the same event id and segment numbers.
  const sealer = new Sealer({
    evidenceDir: rig.evidence,
    journal: rig.journal,
    centerPublicKey: testCenterKeys().publicKey,
  });
  await recoverSpool(rig.spool, { sealer, journal: rig.journal, officer: 'OF-0042' });
  rmSync(join(rig.evidence, 'HN-CS-0001-20260101T000012Z_00001.ts.rse')); // the orphan, receipted
  const names = [];
  for (const [segment, spool] of [
    [0, 'b.ts'],
    [0, 'c.ts'],
    [1, 'd.ts'],
  ] as const) {
    const sealed = await sealer.seal(makeTsClip(rig.spool, spool, 2), { ...meta, segment });
    names.push(basename(sealed.evidencePath));
  }
  t.is(basename(first.evidencePath), 'HN-CS-0001-20260101T000012Z_00000.ts.rse');
  t.deepEqual(names, [
    'HN-CS-0001-20260101T000012Z_00000-1.ts.rse',
    'HN-CS-0001-20260101T000012Z_00000-2.ts.rse',
    'HN-CS-0001-20260101T000012Z_00001-1.ts.rse',
  ]);
  // Each is an id a station takes (the offer schema's pattern).
  for (const name of names) t.true(Value.Check(UploadId, name), name);
});

test('a segment torn by a power cut is recovered and passes verify with the center key (ffprobe)', async (t) => {
  needPrograms('gst-launch-1.0', 'ffprobe');
  const root = join(tempDir(t), 'state');
  const paths = statePaths(root);
  const key = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  const journal = await JournalWriter.open({
    path: paths.journal,
    device: 'HN-CS-0001',
    privateKey: key.privateKey,
  });
  t.teardown(() => journal.close());
  const state = await StateStore.open(paths.db);
  mkdirSync(paths.evidenceDir, { recursive: true });
  const spool = join(root, 'spool');
  mkdirSync(spool);
  const clip = makeTsClip(spool, 'seg-00007.ts', 30);
  // cut mid-packet, as a power cut during a write would
  truncateSync(clip, Math.floor(statSync(clip).size * 0.6) + 77);
  const sealer = new Sealer({
    evidenceDir: paths.evidenceDir,
    journal,
    centerPublicKey: testCenterKeys().publicKey,
    state,
  });
  const report = await recoverSpool(spool, { sealer, journal, officer: 'OF-0042', state });
  t.is(report.resealed.length, 1);
  const result = await verifyState(root, { centerPrivateKey: testCenterKeys().privateKey });
  t.true(result.ok, JSON.stringify(result.problems));
  t.is(result.decrypted, 1);
});
