import test from 'ava';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EvidenceStore, incomingFileName, type StoredItem } from '../../gateway/evidence-store.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { tempDir } from '../helpers/temp.ts';

function item(
  id: string,
  data: Buffer,
  patch: Partial<StoredItem> = {},
): Omit<StoredItem, 'storedAt' | 'receipt'> {
  return {
    id,
    unit: 'HN',
    device: 'HN-CS-0001',
    officer: 'O1',
    event: 'E1',
    kind: 'segment',
    start: '2026-11-23T10:00:00.000Z',
    end: '2026-11-23T10:00:10.000Z',
    entrySeq: 3,
    entryHash: 'a'.repeat(64),
    entryLine: '{}',
    bytes: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
    positions: '[]',
    ...patch,
  };
}

test('an item is stored read-only, indexed, and stored once', async (t) => {
  const root = tempDir(t);
  const store = new EvidenceStore(root);
  t.teardown(() => store.close());
  const data = Buffer.from('ciphertext');
  const incoming = store.incomingPath('HN-CS-0001', 'E1-0.ts.enc');
  writeFileSync(incoming, data);
  const stored = await store.put(incoming, item('E1-0.ts.enc', data), '2026-11-23T10:01:00.000Z');
  const object = store.objectPath(stored.sha256);
  t.is(statSync(object).mode & 0o777, 0o444);
  t.false(existsSync(incoming));
  t.deepEqual(store.get('HN-CS-0001', 'E1-0.ts.enc'), stored);

  // The same item again returns what is stored; nothing is written twice.
  writeFileSync(incoming, data);
  t.deepEqual(await store.put(incoming, item('E1-0.ts.enc', data), 'later'), stored);
  // The same id with other content is a conflict, never an overwrite.
  const error = await t.throwsAsync(store.put(incoming, item('E1-0.ts.enc', Buffer.from('other')), 'later'));
  t.true(isRecorderError(error, 'STORE_CONFLICT'));
});

test('the index answers by device, officer, event and time', async (t) => {
  const store = new EvidenceStore(tempDir(t));
  t.teardown(() => store.close());
  const add = async (id: string, patch: Partial<StoredItem>) => {
    const data = Buffer.from(id);
    const path = store.incomingPath('x', id);
    writeFileSync(path, data);
    await store.put(path, item(id, data, patch), 'now');
  };
  await add('a', { officer: 'O1', start: '2026-11-23T08:00:00Z', end: '2026-11-23T08:00:10Z' });
  await add('b', { officer: 'O2', event: 'E2', start: '2026-11-23T09:00:00Z', end: '2026-11-23T09:00:10Z' });
  await add('c', { device: 'HN-CS-0002', start: '2026-11-23T10:00:00Z', end: '2026-11-23T10:00:10Z' });
  t.deepEqual(
    store.list({ officer: 'O2' }).map((i) => i.id),
    ['b'],
  );
  t.deepEqual(
    store.list({ device: 'HN-CS-0002' }).map((i) => i.id),
    ['c'],
  );
  t.deepEqual(
    store.list({ from: '2026-11-23T08:30:00Z', to: '2026-11-23T09:30:00Z' }).map((i) => i.id),
    ['b'],
  );
  t.deepEqual(
    store.list({ event: 'E2' }).map((i) => i.id),
    ['b'],
  );
});

test('re-hashing finds a changed, truncated or missing object', async (t) => {
  const store = new EvidenceStore(tempDir(t));
  t.teardown(() => store.close());
  const data = Buffer.from('0123456789');
  const path = store.incomingPath('d', 'x');
  writeFileSync(path, data);
  const stored = await store.put(path, item('x', data), 'now');
  t.is(await store.checkObject(stored), null);
  const object = store.objectPath(stored.sha256);
  chmodSync(object, 0o644);
  writeFileSync(object, '0123456780');
  t.is(await store.checkObject(stored), 'STORE_OBJECT_HASH');
  writeFileSync(object, '0123');
  t.is(await store.checkObject(stored), 'STORE_OBJECT_SIZE');
  t.is(await store.checkObject({ ...stored, sha256: 'f'.repeat(64) }), 'STORE_OBJECT_MISSING');
});

test('an object left without its index row is kept when it hashes right, else replaced by the verified bytes', async (t) => {
  const store = new EvidenceStore(tempDir(t));
  t.teardown(() => store.close());
  const data = Buffer.from('verified ciphertext');
  const good = item('good', data);
  // What a gateway killed between the rename into the store and the INSERT leaves behind.
  mkdirSync(dirname(store.objectPath(good.sha256)), { recursive: true });
  writeFileSync(store.objectPath(good.sha256), data, { mode: 0o444 });
  const incoming = store.incomingPath('HN-CS-0001', 'good');
  writeFileSync(incoming, data);
  await store.put(incoming, good, 'now');
  t.false(existsSync(incoming), 'the copy sent again does not stay in incoming/');
  t.is(await store.checkObject(store.get('HN-CS-0001', 'good')!), null);

  const other = Buffer.from('other verified ciphertext');
  const bad = item('bad', other);
  mkdirSync(dirname(store.objectPath(bad.sha256)), { recursive: true });
  writeFileSync(store.objectPath(bad.sha256), 'rotten bytes of the same name');
  const again = store.incomingPath('HN-CS-0001', 'bad');
  writeFileSync(again, other);
  await store.put(again, bad, 'now');
  t.deepEqual(readFileSync(store.objectPath(bad.sha256)), other);
  t.is(await store.checkObject(store.get('HN-CS-0001', 'bad')!), null);
});

test('incoming files of different devices and items never share a name, though ids may hold --', (t) => {
  const store = new EvidenceStore(tempDir(t));
  t.teardown(() => store.close());
  const pairs: [string, string][] = [
    ['HN-CS-0001', 'x--E1-0.ts.enc'],
    ['HN-CS-0001--x', 'E1-0.ts.enc'],
    ['HN-CS-0001-', '-x--E1-0.ts.enc'],
    ['a+b', 'c'],
    ['a', 'b+c'],
    ['a%2Bb', 'c'],
    ['a/..', 'b'],
    ['', 'a+b'],
  ];
  const paths = pairs.map(([device, id]) => store.incomingPath(device, id));
  t.is(new Set(paths).size, pairs.length);
  for (const path of paths) t.is(dirname(path), join(store.root, 'incoming'));
  // What the CA and the offer schema admit is kept as it is, for an operator to read.
  t.is(incomingFileName('HN-CS-0001', 'E1-0.ts.enc'), 'HN-CS-0001+E1-0.ts.enc.part');
});
