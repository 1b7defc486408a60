import test from 'ava';
import type { ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { chmodSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCertificate } from '../../gateway/ca.ts';
import { runRecorder } from '../helpers/cli.ts';
import { evidenceWorld, type GatewayRig } from '../helpers/evidence-rig.ts';
import { testPki } from '../helpers/pki.ts';

interface VerifyOutput {
  ok: boolean;
  items: number;
  problems: { code: string; device: string | null; id: string | null; message: string }[];
}

/** A station holding two devices' uploads (three segments) and their journals. */
async function filledStation(t: ExecutionContext) {
  const world = evidenceWorld(t);
  const station = world.gateway('station', 'station');
  const a = await world.device('HN-CS-0001');
  const b = await world.device('HN-CS-0002');
  await a.seal(20_000);
  await a.seal(5_000);
  await b.seal(1_000);
  await world.upload(a, station);
  await world.upload(b, station);
  return { world, station, a, b };
}

async function verify(station: GatewayRig): Promise<{ code: number | null; out: VerifyOutput }> {
  const result = await runRecorder(['evidence', 'verify', '--config', station.configPath, '--json']);
  return { code: result.code, out: JSON.parse(result.stdout) as VerifyOutput };
}

test('list, show and verify a station store filled through the upload receiver', async (t) => {
  const { station, a } = await filledStation(t);
  const ok = await verify(station);
  t.is(ok.code, 0, JSON.stringify(ok.out.problems));
  t.true(ok.out.ok);
  t.is(ok.out.items, 3);
  t.deepEqual(ok.out.problems, []);

  const table = await runRecorder(['evidence', 'list', '--config', station.configPath]);
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /^DEVICE\s+ID\s+KIND/);
  t.regex(table.stdout, /3 item\(s\)/);
  t.regex(table.stdout, /HN-CS-0002 .* receipted/);

  const listJson = (...filters: string[]) =>
    runRecorder(['evidence', 'list', '--config', station.configPath, '--json', ...filters]);
  const json = await listJson('--device', a.id);
  const rows = json.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(rows.length, 2);
  t.true(rows.every((r) => r.device === a.id && r.receipted === true && r.relayedAt === null));

  // Segments start at 10:00:00 and 10:00:10 (10 s each): only the second overlaps [10:00:15, …].
  const window = await listJson(
    '--device',
    a.id,
    '--from',
    '2026-11-22T10:00:15Z',
    '--to',
    '2026-11-22T11:00:00Z',
  );
  t.is(window.stdout.trim().split('\n').length, 1);
  t.is((JSON.parse(window.stdout) as { start: string }).start, '2026-11-22T10:00:10.000Z');

  const id = rows[0]!.id as string;
  // Item names are unique per device only.
  const ambiguous = await runRecorder(['evidence', 'show', id, '--config', station.configPath]);
  t.is(ambiguous.code, 2);
  t.regex(ambiguous.stderr, /give --device/);
  const show = await runRecorder(['evidence', 'show', id, '--device', a.id, '--config', station.configPath]);
  t.is(show.code, 0, show.stderr);
  const shown = JSON.parse(show.stdout) as Record<string, unknown> & {
    entry: { kind: string; device: string };
    receipt: { receipt: { id: string; role: string } };
    relay: { relayedAt: null };
  };
  t.is(shown.id, id);
  t.is(shown.entry.kind, 'segment');
  t.is(shown.receipt.receipt.id, id);
  t.is(shown.receipt.receipt.role, 'station');
  t.is(shown.relay.relayedAt, null);
  t.is(shown.ingestCheck, null);
  t.is(shown.officer, 'OF-0042');

  const missing = await runRecorder(['evidence', 'show', 'nope.rse', '--config', station.configPath]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /FILE_NOT_FOUND/);
});

test('verify finds a tampered object, a deleted object and a forged journal line', async (t) => {
  const { station, a, b } = await filledStation(t);
  const [first, second] = station.store.list({ device: a.id });
  // Tampered: made writable again and one byte flipped.
  const tampered = station.store.objectPath(first!.sha256);
  chmodSync(tampered, 0o644);
  const bytes = readFileSync(tampered);
  bytes[100] = bytes[100]! ^ 0x01;
  writeFileSync(tampered, bytes);
  // Deleted.
  unlinkSync(station.store.objectPath(second!.sha256));
  // A forged line in the index: device b's last line (its upload receipt) edited, its hash
  // recomputed so only the signature and what the device signed can tell.
  const db = new Database(join(station.dir, 'evidence', 'index.sqlite'));
  const last = db
    .prepare('SELECT seq, line FROM journal_lines WHERE device = ? ORDER BY seq DESC LIMIT 1')
    .get(b.id) as { seq: number; line: string };
  const forged = last.line.replace('"holder":"station"', '"holder":"elsewhere"');
  t.not(forged, last.line);
  const { createHash } = await import('node:crypto');
  db.prepare('UPDATE journal_lines SET line = ?, hash = ? WHERE device = ? AND seq = ?').run(
    forged,
    createHash('sha256').update(forged).digest('hex'),
    b.id,
    last.seq,
  );
  db.close();

  const { code, out } = await verify(station);
  t.is(code, 1);
  t.false(out.ok);
  const has = (c: string, device: string, id: string | null) =>
    out.problems.some((p) => p.code === c && p.device === device && p.id === id);
  t.true(has('STORE_OBJECT_HASH', a.id, first!.id), JSON.stringify(out.problems));
  t.true(has('STORE_OBJECT_WRITABLE', a.id, first!.id));
  t.true(has('STORE_OBJECT_MISSING', a.id, second!.id));
  t.true(has('JOURNAL_BAD_SIGNATURE', b.id, null));
  // b's item itself is intact.
  const bItem = station.store.list({ device: b.id })[0]!.id;
  t.deepEqual(
    out.problems.filter((p) => p.device === b.id && p.id === bItem),
    [],
  );

  const human = await runRecorder(['evidence', 'verify', '--config', station.configPath]);
  t.is(human.code, 1);
  t.regex(human.stdout, /FAILED, 3 item\(s\)/);
  t.regex(human.stdout, /STORE_OBJECT_MISSING HN-CS-0001/);
});

test("verify anchors each device's key in its unit CA: a missing, foreign or swapped certificate, or items under another unit, are found", async (t) => {
  const { world, station, a, b } = await filledStation(t);
  const db = new Database(join(station.dir, 'evidence', 'index.sqlite'));
  t.teardown(() => db.close());
  const setCert = db.prepare('UPDATE devices SET cert = ? WHERE device = ?');
  const problems = async () => {
    const { code, out } = await verify(station);
    t.is(code, 1);
    return out.problems
      .filter((p) => p.code === 'STORE_DEVICE_CERT_INVALID')
      .map((p) => `${p.device}: ${p.message}`);
  };
  // a's row holds b's certificate (as if a's key had been swapped in the index); b's none.
  setCert.run(b.certPem, a.id);
  setCert.run(null, b.id);
  const first = await problems();
  t.is(first.length, 2, JSON.stringify(first));
  t.regex(
    first.find((p) => p.startsWith(a.id))!,
    /names device\/HN-CS-0002/,
  );
  t.regex(
    first.find((p) => p.startsWith(b.id))!,
    /no certificate is held for HN-CS-0002/,
  );
  // a's own evidence key, but certified by a CA of no unit this station admits.
  const foreign = issueCertificate(testPki(join(world.dir, 'foreign')).caDir, {
    role: 'device',
    id: a.id,
    evidencePublicKeyPem: a.keys.publicKey.export({ type: 'spki', format: 'pem' }) as string,
  });
  setCert.run(foreign.certPem, a.id);
  setCert.run(b.certPem, b.id);
  // And b's items moved under another unit in the index.
  db.prepare("UPDATE items SET unit = 'HN-ZZ' WHERE device = ?").run(b.id);
  const second = await problems();
  t.is(second.length, 2, JSON.stringify(second));
  t.regex(
    second.find((p) => p.startsWith(a.id))!,
    /does not chain to a unit CA/,
  );
  t.regex(
    second.find((p) => p.startsWith(b.id))!,
    /indexed under unit HN-ZZ, its certificate is of unit HN-CS/,
  );
  // a's certificate back, and another evidence key in the index (its lines re-signed with it
  // would pass the chain check: the certificate does not).
  setCert.run(a.certPem, a.id);
  db.prepare("UPDATE items SET unit = 'HN-CS' WHERE device = ?").run(b.id);
  const aKey = (
    db.prepare('SELECT public_key FROM devices WHERE device = ?').get(a.id) as { public_key: string }
  ).public_key;
  const bKey = b.keys.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  db.prepare('UPDATE devices SET public_key = ? WHERE device = ?').run(bKey, a.id);
  t.deepEqual(await problems(), [
    `${a.id}: the certificate held for ${a.id} binds another evidence key than the one the index holds`,
  ]);
  // Put back, verify passes again.
  db.prepare('UPDATE devices SET public_key = ? WHERE device = ?').run(aKey, a.id);
  t.is((await verify(station)).code, 0);
});

test("an item whose entry is not the device's journal line at that seq is found", async (t) => {
  const { station, a } = await filledStation(t);
  const item = station.store.list({ device: a.id })[0]!;
  const db = new Database(join(station.dir, 'evidence', 'index.sqlite'));
  db.prepare('DELETE FROM journal_lines WHERE device = ? AND seq >= ?').run(a.id, item.entrySeq);
  db.close();
  const { code, out } = await verify(station);
  t.is(code, 1);
  t.true(out.problems.some((p) => p.code === 'STORE_ENTRY_NOT_IN_CHAIN' && p.id === item.id));
});

test('an index row edited away from its signed entry (officer, event, kind, times, positions) is found', async (t) => {
  const { station, a, b } = await filledStation(t);
  const [first, second] = station.store.list({ device: a.id });
  const third = station.store.list({ device: b.id })[0]!;
  // The object, the entry and the journal stay intact: only what R9 files the item by is edited.
  const db = new Database(join(station.dir, 'evidence', 'index.sqlite'));
  const edit = (sql: string, item: { device: string; id: string }) =>
    db.prepare(`UPDATE items SET ${sql} WHERE device = ? AND id = ?`).run(item.device, item.id);
  edit("officer = 'OF-9999', start = '2020-01-01T00:00:00.000Z'", first!);
  edit(`event = 'E-other', positions = '[{"lat":28.2,"lon":112.9}]'`, second!);
  edit(`kind = 'photo', "end" = '2030-01-01T00:00:00.000Z'`, third);
  db.close();

  const { code, out } = await verify(station);
  t.is(code, 1);
  const mismatch = (item: { device: string; id: string }) =>
    out.problems
      .filter((p) => p.code === 'STORE_INDEX_MISMATCH' && p.device === item.device && p.id === item.id)
      .map((p) => p.message);
  t.deepEqual(mismatch(first!), [
    'the index differs from the device-signed sealing entry in: officer, start',
  ]);
  t.deepEqual(mismatch(second!), [
    'the index differs from the device-signed sealing entry in: event, positions',
  ]);
  t.deepEqual(mismatch(third), ['the index differs from the device-signed sealing entry in: kind, end']);
  t.is(out.problems.length, 3, JSON.stringify(out.problems));
});

test('an item deleted outright (row and object) is found by the receipt the device journaled', async (t) => {
  const { station, a, b } = await filledStation(t);
  const db = new Database(join(station.dir, 'evidence', 'index.sqlite'));
  t.teardown(() => db.close());
  const remove = (item: { device: string; id: string; sha256: string }) => {
    const path = station.store.objectPath(item.sha256);
    chmodSync(path, 0o644);
    unlinkSync(path);
    db.prepare('DELETE FROM items WHERE device = ? AND id = ?').run(item.device, item.id);
  };
  const missing = async () => {
    const { code, out } = await verify(station);
    t.is(code, 1);
    t.true(
      out.problems.every((p) => p.code === 'STORE_ITEM_MISSING'),
      JSON.stringify(out.problems),
    );
    return out.problems.map((p) => `${p.device} ${p.id}`).sort();
  };
  const bItem = station.store.list({ device: b.id })[0]!;
  remove(bItem);
  t.deepEqual(await missing(), [`${b.id} ${bItem.id}`]);
  // Every item gone, so no receipt of this gateway is left in the index: the receipt key tells.
  const aItems = station.store.list({ device: a.id });
  for (const item of aItems) remove(item);
  t.deepEqual(await missing(), [...aItems.map((i) => `${a.id} ${i.id}`), `${b.id} ${bItem.id}`].sort());
});

test('a device journal whose tail was deleted is found, though what is left chains', async (t) => {
  const { station, a, b } = await filledStation(t);
  const db = new Database(join(station.dir, 'evidence', 'index.sqlite'));
  const head = station.store.journalHead(a.id)!;
  // a's last two lines (its upload receipts): every item's entry is still held.
  db.prepare('DELETE FROM journal_lines WHERE device = ? AND seq >= ?').run(a.id, head.seq - 1);
  // b's whole journal.
  db.prepare('DELETE FROM journal_lines WHERE device = ?').run(b.id);
  db.close();
  t.true(station.store.list({ device: a.id }).every((i) => i.entrySeq < head.seq - 1));

  const { code, out } = await verify(station);
  t.is(code, 1);
  const ofA = out.problems.filter((p) => p.device === a.id);
  t.deepEqual(
    ofA.map((p) => p.code),
    ['JOURNAL_TRUNCATED'],
    JSON.stringify(out.problems),
  );
  t.regex(
    ofA[0]!.message,
    new RegExp(
      `ends at seq ${head.seq - 2}, but seq ${head.seq} is known to exist \\(the last line appended here\\)`,
    ),
  );
  t.true(out.problems.some((p) => p.code === 'JOURNAL_TRUNCATED' && p.device === b.id));
});

test('verify cannot run without a store: exit 2, and nothing is created', async (t) => {
  const { station } = await filledStation(t);
  const config = JSON.parse(readFileSync(station.configPath, 'utf8')) as { evidence: { dir: string } };
  config.evidence.dir = join(station.dir, 'nowhere');
  writeFileSync(station.configPath, JSON.stringify(config));
  const result = await runRecorder(['evidence', 'verify', '--config', station.configPath, '--json']);
  t.is(result.code, 2);
  t.regex(result.stderr, /no evidence store/);
  const { existsSync } = await import('node:fs');
  t.false(existsSync(join(station.dir, 'nowhere')));
});
