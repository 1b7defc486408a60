import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needPrograms } from '../helpers/system.ts';
import { runRecorder } from '../helpers/cli.ts';
import { tempDir } from '../helpers/temp.ts';
import { simRecorderFiles } from '../helpers/device-process.ts';
import { JournalWriter } from '../../device/journal-writer.ts';
import { loadOrCreateSigningKey } from '../../device/keys.ts';
import { statePaths } from '../../device/state-paths.ts';

/** A device state directory with a key and a journal of nine entries, written by the real writer. */
async function journalState(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const state = tempDir(t);
  const paths = statePaths(state);
  const key = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  const journal = await JournalWriter.open({
    path: paths.journal,
    device: 'HN-CS-0001',
    privateKey: key.privateKey,
  });
  const events: [string, Record<string, string>][] = [
    ['power-on', { firmware: '0.1.0' }],
    ['officer-assigned', { officer: 'HN-0427' }],
    ['button', { button: 'record', press: 'short' }],
    ['record-start', { event: 'E1' }],
    ['button', { button: 'mark', press: 'short' }],
    ['mark', { event: 'E1', note: '扣押物品拍照' }],
    ['button', { button: 'record', press: 'long' }],
    ['record-stop', { event: 'E1' }],
    ['power-off', { reason: 'test' }],
  ];
  for (const [kind, body] of events) await journal.append(kind, body);
  await journal.close();
  return state;
}

test('a device journal is accepted by `journal verify`, in text and JSON', async (t) => {
  const state = await journalState(t);
  const args = [
    'journal',
    'verify',
    join(state, 'journal.jsonl'),
    '--pubkey',
    join(state, 'keys/device-signing.pub.pem'),
  ];
  const text = await runRecorder(args);
  t.is(text.code, 0, text.stderr);
  const json = await runRecorder([...args, '--json']);
  t.is(json.code, 0);
  t.deepEqual(JSON.parse(json.stdout), { ok: true, entries: 9, problems: [] });
});

test('`journal verify` exits 1 and lists every problem with its line', async (t) => {
  const state = await journalState(t);
  const path = join(state, 'journal.jsonl');
  const lines = readFileSync(path, 'utf8').split('\n');
  lines[4] = lines[4]!.replace('"short"', '"long"');
  writeFileSync(path, lines.join('\n'));
  const result = await runRecorder([
    'journal',
    'verify',
    path,
    '--pubkey',
    join(state, 'keys/device-signing.pub.pem'),
    '--json',
  ]);
  t.is(result.code, 1);
  const report = JSON.parse(result.stdout);
  t.false(report.ok);
  t.deepEqual(
    report.problems.map((p: { line: number; code: string }) => [p.line, p.code]),
    [
      [5, 'JOURNAL_BAD_SIGNATURE'],
      [6, 'JOURNAL_BAD_PREV'],
    ],
  );
});

test('`journal verify` with a missing file or key exits 2 with a code', async (t) => {
  const dir = tempDir(t);
  const result = await runRecorder([
    'journal',
    'verify',
    join(dir, 'none.jsonl'),
    '--pubkey',
    join(dir, 'none.pem'),
  ]);
  t.is(result.code, 2);
  t.regex(result.stderr, /\(KEY_MISSING\)/);
  const usage = await runRecorder(['journal', 'verify']);
  t.is(usage.code, 2);
});

test('the recorder refuses to start with a private key readable by others', async (t) => {
  const files = await simRecorderFiles(tempDir(t));
  const paths = statePaths(files.state);
  loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  chmodSync(paths.privateKey, 0o644);
  const result = await runRecorder(['device', 'run', '--profile', files.profile, '--state', files.state]);
  t.is(result.code, 2);
  t.regex(result.stderr, /\(KEY_PERMISSIONS\)/);
  t.regex(result.stderr, /chmod 600/);
});

test('every subcommand answers --help', async (t) => {
  for (const args of [
    ['--help'],
    ['demo', '--help'],
    ['journal', '--help'],
    ['journal', 'verify', '--help'],
  ]) {
    const result = await runRecorder(args);
    t.is(result.code, 0, args.join(' '));
    t.regex(result.stdout, /Usage: recorder/);
  }
});

function readmeRecipe(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /<!-- auditor-recipe:start -->\n```sh\n([\s\S]*?)```\n<!-- auditor-recipe:end -->/.exec(
    readme,
  );
  if (!block) throw new Error('README.md has no auditor recipe block');
  return block[1]!;
}

test("README's auditor recipe, pasted into a shell, verifies an entry with jq, openssl and sha256sum alone", async (t) => {
  needPrograms('jq', 'openssl', 'sha256sum');
  const state = await journalState(t);
  const work = tempDir(t);
  copyFileSync(join(state, 'journal.jsonl'), join(work, 'journal.jsonl'));
  copyFileSync(join(state, 'keys/device-signing.pub.pem'), join(work, 'device-signing.pub.pem'));
  const recipe = readmeRecipe();

  const good = execFileSync('bash', ['-c', recipe], { cwd: work, encoding: 'utf8' });
  t.regex(good, /Signature Verified Successfully/);
  t.regex(good, /prev OK/);

  // The same recipe catches an edited entry and an edited predecessor.
  const lines = readFileSync(join(work, 'journal.jsonl'), 'utf8').split('\n');
  lines[2] = lines[2]!.replace('"record"', '"photo"');
  lines[1] = lines[1]!.replace('HN-0427', 'HN-0428');
  writeFileSync(join(work, 'journal.jsonl'), lines.join('\n'));
  const bad = spawnSync('bash', ['-c', recipe], { cwd: work, encoding: 'utf8' });
  t.notRegex(bad.stdout, /Signature Verified Successfully/);
  t.regex(bad.stdout + bad.stderr, /Signature Verification Failure/);
  t.regex(bad.stdout, /prev MISMATCH/);
});
