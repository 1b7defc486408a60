import test from 'ava';
import fc from 'fast-check';
import { generateKeyPairSync } from 'node:crypto';
import { verifyJournalBytes, type ChainReport } from '../../protocol/journal-chain.ts';
import { EMPTY_HEAD, entryLine, headAfter, sha256Hex, signEntry } from '../../protocol/journal-entry.ts';
import { buildJournal } from '../helpers/journal.ts';

const journal = buildJournal(8);
const N = journal.lines.length;
const verify = (text: string | Buffer, knownHead?: { seq: number; hash: string }) =>
  verifyJournalBytes(Buffer.from(text), {
    publicKey: journal.publicKey,
    ...(knownHead ? { knownHead } : {}),
  });
const lastHead = { seq: N - 1, hash: sha256Hex(journal.lines[N - 1]!) };
const firstProblemLine = (report: ChainReport) => report.problems[0]?.line;
const join = (lines: string[]) => lines.map((l) => `${l}\n`).join('');

test('an intact journal verifies, with and without its known head', (t) => {
  for (const report of [verify(journal.text), verify(journal.text, lastHead)]) {
    t.true(report.ok, JSON.stringify(report.problems));
    t.is(report.entries, N);
    t.deepEqual(report.head, lastHead);
  }
});

test('property: any single-byte edit is reported at the edited line', (t) => {
  const bytes = Buffer.from(journal.text);
  const lineOf = (pos: number) => bytes.subarray(0, pos).filter((b) => b === 0x0a).length + 1;
  fc.assert(
    fc.property(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), (pos, delta) => {
      const edited = Buffer.from(bytes);
      edited[pos] = (edited[pos]! + delta) % 256;
      const report = verify(edited);
      return !report.ok && firstProblemLine(report) === lineOf(pos);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('property: a deleted line is reported where it was', (t) => {
  fc.assert(
    fc.property(fc.nat(N - 1), (k) => {
      const lines = journal.lines.filter((_, i) => i !== k);
      const report = verify(join(lines), lastHead);
      // Deleting the last line leaves a shorter, valid chain: only the known head reveals it.
      return !report.ok && firstProblemLine(report) === k + 1;
    }),
  );
  t.pass();
});

test('property: an inserted line is reported at it (or, if it copies its follower, right after)', (t) => {
  const foreign = buildJournal(3, 'HN-CS-0001').lines;
  const anyLine = fc.oneof(
    fc.constantFrom(...journal.lines),
    fc.constantFrom(...foreign),
    fc.string({ unit: 'binary', minLength: 1 }).map((s) => s.replace(/\n/g, ' ')),
  );
  fc.assert(
    fc.property(fc.nat(N), anyLine, (k, inserted) => {
      const lines = [...journal.lines.slice(0, k), inserted, ...journal.lines.slice(k)];
      const report = verify(join(lines), lastHead);
      const expected = inserted === journal.lines[k] ? [k + 1, k + 2] : [k + 1];
      return !report.ok && expected.includes(firstProblemLine(report)!);
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('property: two swapped lines are reported at the first of them', (t) => {
  fc.assert(
    fc.property(fc.nat(N - 2), (k) => {
      const lines = [...journal.lines];
      [lines[k], lines[k + 1]] = [lines[k + 1]!, lines[k]!];
      const report = verify(join(lines));
      return !report.ok && firstProblemLine(report) === k + 1;
    }),
  );
  t.pass();
});

test('property: truncation is reported at the first missing or torn line', (t) => {
  const bytes = Buffer.from(journal.text);
  fc.assert(
    fc.property(fc.nat(bytes.length - 1), (cut) => {
      const kept = bytes.subarray(0, cut);
      const completeLines = kept.filter((b) => b === 0x0a).length;
      const report = verify(kept, lastHead);
      const atBoundary = cut === 0 || kept[cut - 1] === 0x0a;
      const code = report.problems[0]?.code;
      return (
        !report.ok &&
        firstProblemLine(report) === completeLines + 1 &&
        code === (atBoundary ? 'JOURNAL_TRUNCATED' : 'JOURNAL_TORN_TAIL')
      );
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test('a torn tail is reported even without a known head', (t) => {
  const report = verify(journal.text.slice(0, -10));
  t.false(report.ok);
  t.deepEqual(
    report.problems.map((p) => [p.line, p.code]),
    [[N, 'JOURNAL_TORN_TAIL']],
  );
});

test('each kind of problem has its own code', (t) => {
  const keys = generateKeyPairSync('ed25519');
  const make = (seq: number, prev: string, time: string, device = 'D1', kind = 'event') => {
    const entry = signEntry(
      { nextSeq: seq, prev },
      { device, kind, body: {}, time: new Date(time) },
      keys.privateKey,
    );
    return entryLine(entry);
  };
  const l0 = make(0, EMPTY_HEAD.prev, '2026-01-01T10:00:10Z');
  const cases: [string, string[], string][] = [
    ['JOURNAL_SEQ_GAP', [l0, make(2, sha256Hex(l0), '2026-01-01T10:00:11Z')], 'gap'],
    ['JOURNAL_SEQ_REPEAT', [l0, make(0, sha256Hex(l0), '2026-01-01T10:00:11Z')], 'repeat'],
    ['JOURNAL_TIME_BACKWARDS', [l0, make(1, sha256Hex(l0), '2026-01-01T10:00:05Z')], 'backwards'],
    ['JOURNAL_DEVICE_MISMATCH', [l0, make(1, sha256Hex(l0), '2026-01-01T10:00:11Z', 'D2')], 'device'],
    ['JOURNAL_BAD_PREV', [l0, make(1, EMPTY_HEAD.prev, '2026-01-01T10:00:11Z')], 'prev'],
    [
      'JOURNAL_NOT_CANONICAL',
      [
        l0,
        JSON.stringify(JSON.parse(make(1, sha256Hex(l0), '2026-01-01T10:00:11Z')), null, 1).replace(
          /\n/g,
          '',
        ),
      ],
      'spaces',
    ],
    ['JOURNAL_BAD_ENTRY', [l0, '{"v":1}'], 'shape'],
    ['JOURNAL_BAD_JSON', [l0, '{"v":'], 'json'],
  ];
  for (const [code, lines, name] of cases) {
    const report = verifyJournalBytes(Buffer.from(join(lines)), { publicKey: keys.publicKey });
    t.deepEqual(report.problems.map((p) => [p.line, p.code]).slice(0, 1), [[2, code]], name);
  }
  // A clock step lets time go back once, deliberately and on the record.
  const step = make(1, sha256Hex(l0), '2026-01-01T09:00:00Z', 'D1', 'clock-step');
  const after = make(2, sha256Hex(step), '2026-01-01T09:00:01Z');
  t.true(verifyJournalBytes(Buffer.from(join([l0, step, after])), { publicKey: keys.publicKey }).ok);
});

test('a journal signed by another key fails on every line', (t) => {
  const other = buildJournal(3);
  const report = verifyJournalBytes(Buffer.from(other.text), { publicKey: journal.publicKey });
  t.deepEqual(
    report.problems.map((p) => [p.line, p.code]),
    [
      [1, 'JOURNAL_BAD_SIGNATURE'],
      [2, 'JOURNAL_BAD_SIGNATURE'],
      [3, 'JOURNAL_BAD_SIGNATURE'],
    ],
  );
});

test('headAfter hashes the exact line bytes', (t) => {
  const first = JSON.parse(journal.lines[0]!);
  t.deepEqual(headAfter(first, journal.lines[0]!), { nextSeq: 1, prev: JSON.parse(journal.lines[1]!).prev });
});

test('entries refuse fractional numbers, which jq would not reproduce', (t) => {
  const keys = generateKeyPairSync('ed25519');
  const error = t.throws(() =>
    signEntry(
      EMPTY_HEAD,
      { device: 'D', kind: 'fix', body: { fix: { lat: 28.5 } }, time: new Date() },
      keys.privateKey,
    ),
  );
  t.is((error as { code?: string }).code, 'JOURNAL_BAD_ENTRY');
  t.regex(error!.message, /body\.fix\.lat/);
  t.notThrows(() =>
    signEntry(
      EMPTY_HEAD,
      { device: 'D', kind: 'fix', body: { fix: { lat: '28.5000000', n: 3 } }, time: new Date() },
      keys.privateKey,
    ),
  );
});
