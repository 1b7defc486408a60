import test from 'ava';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JournalWriter } from '../../device/journal-writer.ts';
import { loadOrCreateSigningKey } from '../../device/keys.ts';
import { buildSimProfile } from '../../device/profile-file.ts';
import { readEvidenceStorage, startSealing } from '../../device/sealing/sealing-service.ts';
import { verifyState } from '../../device/sealing/verify-state.ts';
import { statePaths } from '../../device/state-paths.ts';
import { assessStorage } from '../../device/storage-guard.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { makeTsClip, testCenterKeys } from '../helpers/media.ts';
import { tempDir } from '../helpers/temp.ts';

const pem = () => testCenterKeys().publicKey.export({ type: 'spki', format: 'pem' }) as string;

test('startSealing records the profile and keys, recovers the spool, and verify accepts the result', async (t) => {
  const root = join(tempDir(t), 'state');
  const profile = buildSimProfile({
    unit: 'HN-CS',
    device: 'HN-CS-0001',
    officers: ['OF-1'],
    centerPublicKeyPem: pem(),
    stateDir: root,
  });
  t.regex(profile.storage.spoolDir, /^\/dev\/shm\//);
  t.teardown(() => rmSync(profile.storage.spoolDir, { recursive: true, force: true }));
  const paths = statePaths(root);
  const key = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  const journal = await JournalWriter.open({
    path: paths.journal,
    device: profile.device,
    privateKey: key.privateKey,
  });
  t.teardown(() => journal.close());
  // a segment left in the spool by a previous run that died
  mkdirSync(profile.storage.spoolDir, { recursive: true });
  makeTsClip(profile.storage.spoolDir, 'seg-00004.ts', 5);

  const service = await startSealing({ profile, stateDir: root, journal });
  t.is(service.recovery.resealed.length, 1);
  t.like(service.state.data.profile, { id: 'HN-CS/HN-CS-0001', version: 1, evidenceDir: paths.evidenceDir });
  t.is(service.state.data.keys?.signingFingerprint, key.fingerprint);
  t.is(service.state.data.uploadQueue.length, 1);
  t.deepEqual(readdirSync(profile.storage.spoolDir), []);

  const reading = await readEvidenceStorage(service.evidenceDir);
  t.true(reading.evidenceBytes > 0);
  t.is(assessStorage(reading, { reserveMB: 0, minimumMB: 0 }).level, 'ok');

  const report = await verifyState(root, { centerPrivateKey: testCenterKeys().privateKey });
  t.true(report.ok, JSON.stringify(report.problems));
  t.is(report.decrypted, 1);
});

test('a spool on a disk file system is refused: plaintext never reaches flash', async (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'state');
  const profile = buildSimProfile({
    unit: 'U',
    device: 'D',
    officers: ['O'],
    centerPublicKeyPem: pem(),
    stateDir: root,
  });
  // The checkout is on a disk file system (the temp dir may be tmpfs); .recorder/ is git-ignored.
  const diskSpool = fileURLToPath(new URL(`../../.recorder/disk-spool-${process.pid}`, import.meta.url));
  t.teardown(() => rmSync(diskSpool, { recursive: true, force: true }));
  profile.storage.spoolDir = diskSpool;
  const paths = statePaths(root);
  const key = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  const journal = await JournalWriter.open({ path: paths.journal, device: 'D', privateKey: key.privateKey });
  t.teardown(() => journal.close());
  const error = await t.throwsAsync(startSealing({ profile, stateDir: root, journal }));
  t.true(isRecorderError(error, 'SPOOL_NOT_RAM'));
  t.regex(error!.message, /\/storage\/spoolDir/);
});
