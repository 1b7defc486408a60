import test from 'ava';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EvidenceStore, incomingFileName, type StoredItem } from '../../gateway/evidence-store.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { opensOf, syncedBefore, traceChild } from '../helpers/strace.ts';
import { storedItem } from '../helpers/stored-item.ts';
import { tempDir } from '../helpers/temp.ts';

const PUT_CHILD = fileURLToPath(new URL('./fixtures/store-put-child.ts', import.meta.url));

const item = storedItem;

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

test("an object kept from before a kill is fsync'd with its folder before its row; a new folder's parent is fsync'd (strace)", async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const { code, stderr, calls } = await traceChild(PUT_CHILD, [store], join(dir, 'strace.log'));
  t.is(code, 0, stderr);
  // The child's stdout is not captured under strace: the paths follow from the store's layout.
  const objects = calls.flatMap((c, i) =>
    c.name.startsWith('open') && /\/objects\/[0-9a-f]{2}\/[0-9a-f]{64}[^"/]*"/.test(c.args) ? [i] : [],
  );
  t.true(objects.length > 0, 'the trace shows the objects');
  const reusedPath = /"([^"]*\/objects\/[0-9a-f]{2}\/[0-9a-f]{64}[^"/]*)"/.exec(
    calls[objects[0]!]!.args,
  )![1]!;
  // After the child's copy wrote it, put() opens the object again and fsyncs it, then its folder.
  const copied = opensOf(calls, reusedPath).filter((n) => calls[n]!.args.includes('O_WRONLY'));
  const after = opensOf(calls, reusedPath).filter((n) => n > copied.at(-1)!);
  t.true(
    after.some((n) => syncedBefore(calls, n, calls.length)),
    "the kept object is fsync'd before its row is written",
  );
  const folder = dirname(reusedPath);
  t.true(
    opensOf(calls, folder).some((n) => n > copied.at(-1)! && syncedBefore(calls, n, calls.length)),
    'and its folder',
  );
  // The second item's objects/yy folder is new: objects/ itself is fsync'd after it is made.
  const parent = dirname(folder);
  t.true(
    opensOf(calls, parent).some((n) => syncedBefore(calls, n, calls.length)),
    "objects/ is fsync'd once a folder is made in it",
  );
});
