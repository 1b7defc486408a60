import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { verifyJournalFile } from '../../device/journal-reader.ts';
import { JournalWriter, TORN_TAIL_KIND } from '../../device/journal-writer.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { sha256Hex, type JournalEntry } from '../../protocol/journal-entry.ts';
import { tempDir } from '../helpers/temp.ts';
import { reapWithWorker } from '../helpers/child-reaper.ts';

const keys = generateKeyPairSync('ed25519');
const open = (path: string, now?: () => Date) =>
  JournalWriter.open({ path, device: 'HN-CS-0001', privateKey: keys.privateKey, ...(now ? { now } : {}) });

/** The journal's lines as entries. */
const entriesOf = (path: string): JournalEntry[] =>
  readFileSync(path, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as JournalEntry);

/** A journal of one entry, closed; `intactSize` is its length, where a torn tail would begin. */
async function oneEntryJournal(t: ExecutionContext) {
  const dir = tempDir(t);
  const path = join(dir, 'journal.jsonl');
  const w = await open(path);
  await w.append('a', {});
  await w.close();
  return { dir, path, intactSize: readFileSync(path).length };
}

test('entries are appended in order, one canonical line each, and continue after reopening', async (t) => {
  const path = join(tempDir(t), 'journal.jsonl');
  const w = await open(path);
  const appended = await Promise.all([
    w.append('a', { i: 1 }),
    w.append('b', { i: 2 }),
    w.append('c', { i: 3 }),
  ]);
  t.deepEqual(
    appended.map((e) => e.seq),
    [0, 1, 2],
  );
  await w.close();
  const w2 = await open(path);
  t.is((await w2.append('d', {})).seq, 3);
  await w2.close();
  const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
  t.is(lines.length, 4);
  t.deepEqual(
    lines.map((l) => JSON.parse(l).kind),
    ['a', 'b', 'c', 'd'],
  );
  const report = await verifyJournalFile(path, { publicKey: keys.publicKey });
  t.true(report.ok, JSON.stringify(report.problems));
  t.is(report.entries, 4);
});

test('a second writer in the same process is refused', async (t) => {
  const path = join(tempDir(t), 'journal.jsonl');
  const w = await open(path);
  const error = await t.throwsAsync(open(path));
  t.true(isRecorderError(error, 'JOURNAL_LOCKED'));
  await w.close();
  const again = await open(path);
  await again.close();
});

test("a writer held by another live process is refused; a dead one's lock is taken over", async (t) => {
  const path = join(tempDir(t), 'journal.jsonl');
  const sleeper = reapWithWorker(spawn('sleep', ['30']));
  t.teardown(() => sleeper.kill());
  writeFileSync(`${path}.lock`, `${sleeper.pid}\n`);
  const error = await t.throwsAsync(open(path));
  t.true(isRecorderError(error, 'JOURNAL_LOCKED'));
  t.regex(error!.message, new RegExp(`process ${sleeper.pid}`));

  sleeper.kill();
  await new Promise((resolve) => sleeper.once('exit', resolve));
  const w = await open(path);
  await w.append('after-crash', {});
  await w.close();
  t.false(existsSync(`${path}.lock`));
});

test('a torn tail is moved byte for byte into a .torn file and the move is journaled', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'journal.jsonl');
  const w = await open(path);
  await w.append('a', {});
  await w.append('b', {});
  await w.close();
  const intactSize = readFileSync(path).length;
  const torn = Buffer.concat([Buffer.from('{"body":{"half":"written'), Buffer.from([0xff, 0x00])]);
  appendFileSync(path, torn);

  const before = await verifyJournalFile(path, { publicKey: keys.publicKey });
  t.deepEqual(
    before.problems.map((p) => [p.line, p.code]),
    [[3, 'JOURNAL_TORN_TAIL']],
  );

  const w2 = await open(path);
  await w2.append('c', {});
  await w2.close();
  const tornFile = readdirSync(dir).find((f) => f.includes('.torn-'));
  t.is(tornFile, `journal.jsonl.torn-${intactSize}`);
  t.deepEqual(readFileSync(join(dir, tornFile!)), torn);

  const lines = entriesOf(path);
  t.deepEqual(
    lines.map((e) => e.kind),
    ['a', 'b', TORN_TAIL_KIND, 'c'],
  );
  t.deepEqual(lines[2]!.body, {
    offset: intactSize,
    bytes: torn.length,
    sha256: sha256Hex(torn),
    file: tornFile,
  });
  t.true((await verifyJournalFile(path, { publicKey: keys.publicKey })).ok);
});

test('a tail torn again at the same offset (power cut while journaling the move) keeps both, and one entry names both', async (t) => {
  const { dir, path, intactSize } = await oneEntryJournal(t);
  const first = Buffer.from('{"body":{"evidence":{"file":"EV-1_00000.ts.rse","bytes":123');
  appendFileSync(path, first);
  await (await open(path)).close();
  // The second power cut: only part of the journal-torn-tail entry, at the same offset, reached the disk.
  const second = readFileSync(path).subarray(intactSize, intactSize + 40);
  truncateSync(path, intactSize + second.length);

  await (await open(path)).close();
  t.deepEqual(readFileSync(`${path}.torn-${intactSize}`), first);
  t.deepEqual(readFileSync(`${path}.torn-${intactSize}-2`), second);
  t.deepEqual(
    readdirSync(dir)
      .filter((f) => f.includes('.torn-'))
      .sort(),
    [`journal.jsonl.torn-${intactSize}`, `journal.jsonl.torn-${intactSize}-2`],
  );
  const lines = entriesOf(path);
  t.deepEqual(
    lines.map((e) => e.kind),
    ['a', TORN_TAIL_KIND],
  );
  t.deepEqual(lines[1]!.body, {
    offset: intactSize,
    file: `journal.jsonl.torn-${intactSize}-2`,
    bytes: second.length,
    sha256: sha256Hex(second),
    earlier: [{ file: `journal.jsonl.torn-${intactSize}`, bytes: first.length, sha256: sha256Hex(first) }],
  });
  const report = await verifyJournalFile(path, { publicKey: keys.publicKey });
  t.true(report.ok, JSON.stringify(report.problems));
});

test('a power cut after the tail was kept but before it was cut off repeats the move into the same file', async (t) => {
  const { dir, path, intactSize } = await oneEntryJournal(t);
  const torn = Buffer.from('{"body":{"half":"written');
  appendFileSync(path, torn);
  writeFileSync(`${path}.torn-${intactSize}`, torn);

  await (await open(path)).close();
  t.deepEqual(
    readdirSync(dir).filter((f) => f.includes('.torn-')),
    [`journal.jsonl.torn-${intactSize}`],
  );
  t.deepEqual(readFileSync(`${path}.torn-${intactSize}`), torn);
  const lines = entriesOf(path);
  t.deepEqual(lines[1]!.body, {
    offset: intactSize,
    file: `journal.jsonl.torn-${intactSize}`,
    bytes: torn.length,
    sha256: sha256Hex(torn),
  });
  t.true((await verifyJournalFile(path, { publicKey: keys.publicKey })).ok);
});

test('a power cut after the tail was cut off but before the move was journaled: the next open journals it', async (t) => {
  const { path, intactSize } = await oneEntryJournal(t);
  const torn = Buffer.from('{"body":{"half":"written');
  writeFileSync(`${path}.torn-${intactSize}`, torn);

  await (await open(path)).close();
  const lines = entriesOf(path);
  t.deepEqual(
    lines.map((e) => [e.kind, e.body]),
    [
      ['a', {}],
      [
        TORN_TAIL_KIND,
        {
          offset: intactSize,
          file: `journal.jsonl.torn-${intactSize}`,
          bytes: torn.length,
          sha256: sha256Hex(torn),
        },
      ],
    ],
  );
  await (await open(path)).close();
  t.is(readFileSync(path, 'utf8').trimEnd().split('\n').length, 2, 'a journaled move is not journaled again');
});

test('a journal whose last complete line is not an entry is not continued', async (t) => {
  const path = join(tempDir(t), 'journal.jsonl');
  const w = await open(path);
  await w.append('a', {});
  await w.close();
  appendFileSync(path, 'garbage\n');
  const error = await t.throwsAsync(open(path));
  t.true(isRecorderError(error, 'JOURNAL_CORRUPT'));
  t.false(existsSync(`${path}.lock`), 'a refused open releases its lock');
});

test('time comes from the injected clock', async (t) => {
  const path = join(tempDir(t), 'journal.jsonl');
  const w = await open(path, () => new Date('2030-01-02T03:04:05.678Z'));
  t.is((await w.append('a', {})).time, '2030-01-02T03:04:05.678Z');
  await w.close();
});

test('a clock set back is journaled as a clock-step before the next entry, so the chain still verifies', async (t) => {
  const path = join(tempDir(t), 'journal.jsonl');
  let now = new Date('2030-01-02T10:00:00.000Z');
  const w = await open(path, () => now);
  await w.append('a', {});
  now = new Date('2030-01-02T10:00:00.500Z');
  await w.append('b', {});
  now = new Date('2030-01-02T09:00:00.000Z'); // an RTC an hour fast, corrected
  const c = await w.append('c', {});
  await w.close();
  // After a restart too: the last entry's time is read back from the file.
  now = new Date('2030-01-02T08:59:00.000Z');
  const w2 = await open(path, () => now);
  const d = await w2.append('d', {});
  await w2.close();

  const entries = entriesOf(path);
  t.deepEqual(
    entries.map((e) => e.kind),
    ['a', 'b', 'clock-step', 'c', 'clock-step', 'd'],
  );
  t.deepEqual(entries[2]!.body, { from: '2030-01-02T10:00:00.500Z', stepMs: -3_600_500 });
  t.is(entries[2]!.time, '2030-01-02T09:00:00.000Z');
  t.deepEqual(entries[4]!.body, { from: '2030-01-02T09:00:00.000Z', stepMs: -60_000 });
  t.is(c.seq, 3, 'the entry returned is the one written after the step');
  t.is(d.seq, 5);
  t.is(w2.head.nextSeq, 6);
  const report = await verifyJournalFile(path, { publicKey: keys.publicKey });
  t.true(report.ok, JSON.stringify(report.problems));
});

test('appending after close is refused with a code', async (t) => {
  const path = join(tempDir(t), 'journal.jsonl');
  const w = await open(path);
  await w.close();
  t.true(isRecorderError(await t.throwsAsync(w.append('late', {})), 'JOURNAL_WRITE_FAILED'));
});
