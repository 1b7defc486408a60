import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyJournalFile } from '../../device/journal-reader.ts';
import { decryptEvidence, hashFile } from '../../device/sealing/evidence-file.ts';
import { Sealer, type SealedBody, type SealMeta } from '../../device/sealing/sealer.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { parseEvidenceHeader } from '../../protocol/evidence-format.ts';
import { sha256Hex } from '../../protocol/journal-entry.ts';
import { makeJpeg, makeTsClip, testCenterKeys } from '../helpers/media.ts';
import { needPrograms } from '../helpers/system.ts';
import { deviceKeys, sealingRig } from '../helpers/sealing.ts';

function meta(over: Partial<SealMeta> = {}): SealMeta {
  return {
    event: 'EV-20261122T100000Z',
    segment: 0,
    reason: 'recording',
    start: new Date('2026-11-22T10:00:00.000Z'),
    end: new Date('2026-11-22T10:00:10.000Z'),
    runningStartMs: 0,
    runningEndMs: 10_000,
    officer: 'OF-0042',
    fixes: [
      {
        mode: 3,
        time: '2026-11-22T10:00:01.000Z',
        lat: 28.22783,
        lon: 112.93881,
        altMSL: 50,
        speed: 0,
        track: null,
        sats: 8,
        hdop: 0.9,
      },
    ],
    mediaType: 'video/mp2t',
    ...over,
  };
}

/** The shared sealing rig (test/helpers/sealing.ts) with this file's sealer options. */
function setup(t: ExecutionContext, options: { parallelHashMinBytes?: number; chunkBytes?: number } = {}) {
  return sealingRig(t, options);
}

test('a segment is hashed, encrypted, journaled, queued for upload and removed from the spool', async (t) => {
  const { dir, spool, evidence, journal, state, sealer } = await setup(t);
  const clip = makeTsClip(spool, 'seg-00000.ts');
  const plain = readFileSync(clip);
  const { entry, evidencePath } = await sealer.seal(clip, meta());

  t.false(existsSync(clip), 'plaintext deleted from the spool');
  t.is(entry.kind, 'segment');
  const body = entry.body as unknown as SealedBody;
  t.is(body.sha256, sha256Hex(plain));
  t.is(body.bytes, plain.length);
  t.is(body.spool, 'seg-00000.ts');
  t.is(body.recovered, false);
  t.is(body.reason, 'recording');
  t.deepEqual(body.fixes, [
    { time: '2026-11-22T10:00:01.000Z', mode: '3', lat: '28.2278300', lon: '112.9388100' },
  ]);
  t.is(evidencePath, join(evidence, 'EV-20261122T100000Z_00000.ts.rse'));
  const sealed = readFileSync(evidencePath);
  t.is(body.evidence.file, 'EV-20261122T100000Z_00000.ts.rse');
  t.is(body.evidence.bytes, sealed.length);
  t.is(body.evidence.sha256, sha256Hex(sealed));
  t.is(statSync(evidencePath).mode & 0o777, 0o444, 'evidence is read-only');
  t.is(sealed.indexOf(plain.subarray(0, 188)), -1, 'no plaintext in the evidence file');
  t.deepEqual(readdirSync(evidence), ['EV-20261122T100000Z_00000.ts.rse'], 'no temp file left');

  // the center decrypts it back to the very bytes
  const out = join(dir, 'back.ts');
  const back = await decryptEvidence(evidencePath, testCenterKeys().privateKey, out);
  t.is(back.sha256, body.sha256);
  t.deepEqual(readFileSync(out), plain);

  t.deepEqual(state.data.journalHead, { seq: entry.seq, hash: journal.head.prev });
  t.is(state.data.uploadQueue.length, 1);
  t.is(state.data.uploadQueue[0]!.file, body.evidence.file);
  t.is(state.data.uploadQueue[0]!.sha256, body.evidence.sha256);
  t.is(
    Date.parse(state.data.uploadQueue[0]!.deadline) - Date.parse(state.data.uploadQueue[0]!.sealedAt),
    24 * 3_600_000,
  );
  const report = await verifyJournalFile(journal.path, { publicKey: deviceKeys.publicKey });
  t.true(report.ok, JSON.stringify(report.problems));
});

for (const [label, options] of [
  ['a worker thread, 1 MiB chunks', { parallelHashMinBytes: 1 }],
  [
    'worker thread, 64 KiB chunks (buffers handed back and reused)',
    { parallelHashMinBytes: 1, chunkBytes: 65536 },
  ],
  [
    'main thread, 64 KiB chunks (two alternating buffers)',
    { parallelHashMinBytes: Infinity, chunkBytes: 65536 },
  ],
] as const) {
  test(`hashes and ciphertext are right with the plaintext hashed on ${label}`, async (t) => {
    const { spool, sealer } = await setup(t, options);
    const data = Buffer.alloc(3 * 1024 * 1024 + 12345);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 16)) & 0xff;
    const file = join(spool, 'big.ts');
    writeFileSync(file, data);
    const { entry, evidencePath } = await sealer.seal(file, meta({ segment: 1 }));
    const body = entry.body as unknown as SealedBody;
    t.is(body.sha256, sha256Hex(data));
    t.is(body.bytes, data.length);
    t.is(body.evidence.sha256, (await hashFile(evidencePath)).sha256);
    const back = await decryptEvidence(evidencePath, testCenterKeys().privateKey, null);
    t.is(back.sha256, sha256Hex(data));
    t.is(back.bytes, data.length);
  });
}

test('a photo is journaled as kind photo; each item has its own key and IV', async (t) => {
  const { spool, sealer } = await setup(t);
  const a = makeJpeg(spool, 'a.jpg');
  const b = join(spool, 'b.jpg');
  copyFileSync(a, b);
  const ra = await sealer.seal(a, meta({ mediaType: 'image/jpeg', segment: 0, event: 'PH' }));
  const rb = await sealer.seal(b, meta({ mediaType: 'image/jpeg', segment: 0, event: 'PH' }));
  t.is(ra.entry.kind, 'photo');
  t.not(ra.evidencePath, rb.evidencePath, 'an existing evidence name is never reused');
  t.regex(rb.evidencePath, /PH_00000-1\.jpg\.rse$/);
  const ha = parseEvidenceHeader(readFileSync(ra.evidencePath));
  const hb = parseEvidenceHeader(readFileSync(rb.evidencePath));
  t.false(ha.iv.equals(hb.iv));
  t.false(ha.wrappedKey.equals(hb.wrappedKey));
  t.is((ra.entry.body as unknown as SealedBody).sha256, (rb.entry.body as unknown as SealedBody).sha256);
});

test('an auditor unwraps the content key with openssl pkeyutl (RSA-OAEP-SHA256)', async (t) => {
  needPrograms('openssl');
  const { dir, spool, sealer } = await setup(t);
  const clip = makeTsClip(spool, 'x.ts', 5);
  const { evidencePath } = await sealer.seal(clip, meta());
  const header = parseEvidenceHeader(readFileSync(evidencePath));
  t.is(header.wrappedKey.length, 384);
  writeFileSync(join(dir, 'wrapped.bin'), header.wrappedKey);
  writeFileSync(
    join(dir, 'center.key.pem'),
    testCenterKeys().privateKey.export({ type: 'pkcs8', format: 'pem' }),
    { mode: 0o600 },
  );
  const key = execFileSync('openssl', [
    'pkeyutl',
    '-decrypt',
    '-inkey',
    join(dir, 'center.key.pem'),
    '-in',
    join(dir, 'wrapped.bin'),
    '-pkeyopt',
    'rsa_padding_mode:oaep',
    '-pkeyopt',
    'rsa_oaep_md:sha256',
  ]);
  t.is(key.length, 32);
});

test('tampering with the header or the ciphertext fails decryption', async (t) => {
  const { dir, spool, sealer } = await setup(t);
  const { evidencePath } = await sealer.seal(makeTsClip(spool, 'y.ts', 5), meta());
  const original = readFileSync(evidencePath);
  for (const offset of [9 + 3, original.length - 100]) {
    const bad = Buffer.from(original);
    bad[offset]! ^= 1;
    const path = join(dir, `bad-${offset}.rse`);
    writeFileSync(path, bad);
    const error = await t.throwsAsync(
      decryptEvidence(path, testCenterKeys().privateKey, join(dir, 'out.ts')),
    );
    t.true(
      isRecorderError(error, 'EVIDENCE_DECRYPT_FAILED') || isRecorderError(error, 'EVIDENCE_BAD_FORMAT'),
      String(error),
    );
    t.false(existsSync(join(dir, 'out.ts')), 'no unauthenticated plaintext written');
  }
});

test('sealing a missing spool file is a coded error and writes nothing', async (t) => {
  const { spool, evidence, sealer, journal } = await setup(t);
  const error = await t.throwsAsync(sealer.seal(join(spool, 'nope.ts'), meta()));
  t.true(isRecorderError(error, 'SPOOL_NOT_FOUND'));
  t.deepEqual(readdirSync(evidence), []);
  t.is(journal.head.nextSeq, 0);
});

test('the center key must be RSA of at least 3072 bits', (t) => {
  const weak = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  const error = t.throws(
    () =>
      new Sealer({
        evidenceDir: '/nonexistent',
        journal: {
          append: async () => {
            throw new Error();
          },
          head: { nextSeq: 0, prev: '' },
        },
        centerPublicKey: weak,
      }),
  );
  t.true(isRecorderError(error, 'KEY_INVALID'));
  t.regex(error!.message, /RSA-2048/);
});

test('bad metadata is refused before anything is written', async (t) => {
  const { spool, evidence, sealer, journal } = await setup(t);
  const clip = makeTsClip(spool, 'm.ts', 3);
  for (const bad of [
    meta({ start: new Date('nonsense') }),
    meta({ segment: -1 }),
    meta({ mediaType: '' }),
    meta({ reason: 'whatever' as 'recording' }),
  ]) {
    const error = await t.throwsAsync(sealer.seal(clip, bad));
    t.true(isRecorderError(error, 'SEAL_FAILED'));
    t.regex(error!.message, /bad metadata/);
  }
  t.deepEqual(readdirSync(evidence), []);
  t.is(journal.head.nextSeq, 0);
  t.true(existsSync(clip));
});
