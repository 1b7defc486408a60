import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyJournalFile } from '../../device/journal-reader.ts';
import { JournalWriter } from '../../device/journal-writer.ts';
import { decryptEvidence } from '../../device/sealing/evidence-file.ts';
import { readSealedIndex } from '../../device/sealing/journal-index.ts';
import { recoverSpool } from '../../device/sealing/recover-spool.ts';
import { Sealer } from '../../device/sealing/sealer.ts';
import { StateStore } from '../../device/state-store.ts';
import { sha256Hex } from '../../protocol/journal-entry.ts';
import { testCenterKeys } from '../helpers/media.ts';
import { deviceKeys } from '../helpers/sealing.ts';
import { tempDir } from '../helpers/temp.ts';
import { reapWithWorker } from '../helpers/child-reaper.ts';

const CHILD = fileURLToPath(new URL('./fixtures/seal-child.ts', import.meta.url));

/** Runs the sealing child and SIGKILLs it `delayMs` after it reports `afterLines` lines. */
function runAndKill(dir: string, afterLines: number, delayMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = reapWithWorker(
      spawn(process.execPath, ['--import=tsx', CHILD, dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    const lines: string[] = [];
    let buffer = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.stdout.on('data', (d: Buffer) => {
      buffer += d;
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        lines.push(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
        if (lines.length === afterLines) setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0 && signal !== 'SIGKILL') reject(new Error(`child failed (${code}): ${stderr}`));
      else resolve(lines);
    });
  });
}

// Kill points: before the first seal finishes, in the middle of the run, between later seals.
for (const [afterLines, delayMs] of [
  [1, 5],
  [2, 20],
  [3, 2],
] as const) {
  test(`SIGKILL while sealing (after line ${afterLines} + ${delayMs} ms): recovery loses nothing`, async (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, 'spool'));
    mkdirSync(join(dir, 'evidence'));
    writeFileSync(
      join(dir, 'device.key.pem'),
      deviceKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      { mode: 0o600 },
    );
    writeFileSync(
      join(dir, 'center.pub.pem'),
      testCenterKeys().publicKey.export({ type: 'spki', format: 'pem' }),
    );
    const originals = new Map<string, string>();
    for (let i = 0; i < 5; i++) {
      const data = randomBytes(6 << 20);
      writeFileSync(join(dir, 'spool', `seg-${i}.ts`), data);
      originals.set(sha256Hex(data), `seg-${i}.ts`);
    }
    const lines = await runAndKill(dir, afterLines, delayMs);
    t.log(`child printed ${lines.length - 1} seals before the kill`);

    const journal = await JournalWriter.open({
      path: join(dir, 'journal.jsonl'),
      device: 'HN-CS-0001',
      privateKey: deviceKeys.privateKey,
    });
    t.teardown(() => journal.close());
    const state = await StateStore.open(join(dir, 'state.json'));
    const sealer = new Sealer({
      evidenceDir: join(dir, 'evidence'),
      journal,
      centerPublicKey: testCenterKeys().publicKey,
      state,
    });
    const report = await recoverSpool(join(dir, 'spool'), { sealer, journal, officer: 'OF-0042', state });
    t.deepEqual(report.failed, []);
    t.deepEqual(readdirSync(join(dir, 'spool')), []);

    // Every original plaintext is sealed and decrypts to the very bytes.
    const index = await readSealedIndex(journal.path);
    const sealedHashes = new Set(index.items.map((i) => i.sha256));
    for (const [hash, name] of originals) t.true(sealedHashes.has(hash), `${name} was lost`);
    // Every journaled item whose file is here is queued for upload exactly once.
    t.deepEqual(
      state.data.uploadQueue.map((q) => q.file).sort(),
      index.items.map((i) => i.evidence.file).sort(),
    );
    for (const item of index.items) {
      const back = await decryptEvidence(
        join(dir, 'evidence', item.evidence.file),
        testCenterKeys().privateKey,
        null,
      );
      t.is(back.sha256, item.sha256);
    }
    // No evidence file is unaccounted for, and the chain verifies against the stored head.
    for (const f of readdirSync(join(dir, 'evidence'))) {
      t.true(index.byEvidenceFile.has(f) || index.orphans.has(f), `unaccounted ${f}`);
    }
    const chain = await verifyJournalFile(journal.path, {
      publicKey: deviceKeys.publicKey,
      ...(state.data.journalHead ? { knownHead: state.data.journalHead } : {}),
    });
    t.true(chain.ok, JSON.stringify(chain.problems));
  });
}
