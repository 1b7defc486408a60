import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyJournalFile } from '../../device/journal-reader.ts';
import { decryptEvidence } from '../../device/sealing/evidence-file.ts';
import { assessStorage } from '../../device/storage-guard.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { sha256Hex } from '../../protocol/journal-entry.ts';
import { testCenterKeys } from '../helpers/media.ts';
import { deviceKeys, sealingRig, sealMeta } from '../helpers/sealing.ts';
import { tempDir } from '../helpers/temp.ts';

const MiB = 1024 * 1024;
const limits = { reserveMB: 100, minimumMB: 20 };

test('the guard says ok, warn below the reserve, refuse below the minimum, with the reason', (t) => {
  const ok = assessStorage({ totalBytes: 1000 * MiB, freeBytes: 500 * MiB, evidenceBytes: 0 }, limits);
  t.is(ok.level, 'ok');
  t.true(ok.mayStartRecording);
  const warn = assessStorage(
    { totalBytes: 1000 * MiB, freeBytes: 99 * MiB, evidenceBytes: 800 * MiB },
    limits,
  );
  t.is(warn.level, 'warn');
  t.true(warn.mayStartRecording);
  t.regex(warn.reason, /99 MB free, below the reserve of 100 MB/);
  const refuse = assessStorage(
    { totalBytes: 1000 * MiB, freeBytes: 19 * MiB, evidenceBytes: 900 * MiB },
    limits,
  );
  t.is(refuse.level, 'refuse');
  t.false(refuse.mayStartRecording);
  t.is(refuse.code, 'STORAGE_LOW');
  t.regex(refuse.reason, /below the minimum of 20 MB: recording refused/);
  t.regex(refuse.reason, /900 MB of evidence awaits upload and is never deleted/);
  // exactly at the limits is allowed
  t.is(assessStorage({ totalBytes: 1, freeBytes: 20 * MiB, evidenceBytes: 0 }, limits).level, 'warn');
  t.is(assessStorage({ totalBytes: 1, freeBytes: 100 * MiB, evidenceBytes: 0 }, limits).level, 'ok');
});

/** A real 2 MiB tmpfs, unmounted at the end. Needs root (CAP_SYS_ADMIN). */
function smallFilesystem(t: ExecutionContext): string {
  const dir = join(tempDir(t), 'small');
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0755', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `this test mounts a 2 MiB tmpfs and must run as root (mount failed: ${(error as Error).message})`,
      { cause: error },
    );
  }
  t.teardown(() => execFileSync('umount', [dir]));
  return dir;
}

for (const path of ['refused before writing', 'ENOSPC while writing'] as const) {
  test(`storage exhausted (${path}): STORAGE_FULL, no evidence deleted, plaintext kept, journal valid`, async (t) => {
    const small = smallFilesystem(t);
    const { spool, evidence, journal, sealer } = await sealingRig(t, {
      evidence: join(small, 'evidence'),
      // a negative margin lets the write start and run into ENOSPC
      ...(path === 'ENOSPC while writing' ? { spaceMarginBytes: -64 * MiB } : {}),
    });
    // Fill most of the volume with sealed evidence.
    const sealed: string[] = [];
    for (let i = 0; ; i++) {
      const file = join(spool, `seg-${i}.ts`);
      writeFileSync(file, Buffer.alloc(300 * 1024, i));
      try {
        sealed.push((await sealer.seal(file, sealMeta({ segment: i }))).evidencePath);
      } catch (error) {
        t.true(isRecorderError(error, 'STORAGE_FULL'), String(error));
        t.regex((error as Error).message, /nothing was deleted and the plaintext stays in the spool/);
        // the plaintext is still there for a later retry
        t.deepEqual(readFileSync(file), Buffer.alloc(300 * 1024, i));
        break;
      }
      if (i > 20) t.fail('the small file system never filled up');
    }
    t.true(sealed.length >= 3, `sealed ${sealed.length}`);
    // no evidence deleted, no temp file left, every sealed item still decrypts
    t.deepEqual(readdirSync(evidence).sort(), sealed.map((p) => p.slice(evidence.length + 1)).sort());
    for (const [i, p] of sealed.entries()) {
      const back = await decryptEvidence(p, testCenterKeys().privateKey, null);
      t.is(back.sha256, sha256Hex(Buffer.alloc(300 * 1024, i)));
    }
    const chain = await verifyJournalFile(journal.path, { publicKey: deviceKeys.publicKey });
    t.true(chain.ok);
    t.is(chain.entries, sealed.length);

    // The guard, fed a real statfs reading of the full volume, refuses a new recording.
    const s = statfsSync(small);
    const verdict = assessStorage(
      {
        totalBytes: s.blocks * s.bsize,
        freeBytes: s.bavail * s.bsize,
        evidenceBytes: sealed.length * 300 * 1024,
      },
      { reserveMB: 1, minimumMB: 1 },
    );
    t.is(verdict.level, 'refuse');
    t.false(verdict.mayStartRecording);
  });
}
