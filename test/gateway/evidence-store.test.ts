import test from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { EvidenceStore, type StoredItem } from '../../gateway/evidence-store.ts';
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

test('an item is stored read-only, indexed, and stored once', (t) => {
  const root = tempDir(t);
  const store = new EvidenceStore(root);
  t.teardown(() => store.close());
  const data = Buffer.from('ciphertext');
  const incoming = store.incomingPath('HN-CS-0001', 'E1-0.ts.enc');
  writeFileSync(incoming, data);
  const stored = store.put(incoming, item('E1-0.ts.enc', data), '2026-11-23T10:01:00.000Z');
  const object = store.objectPath(stored.sha256);
  t.is(statSync(object).mode & 0o777, 0o444);
  t.false(existsSync(incoming));
  t.deepEqual(store.get('HN-CS-0001', 'E1-0.ts.enc'), stored);

  // The same item again returns what is stored; nothing is written twice.
  writeFileSync(incoming, data);
  t.deepEqual(store.put(incoming, item('E1-0.ts.enc', data), 'later'), stored);
  // The same id with other content is a conflict, never an overwrite.
  const error = t.throws(() => store.put(incoming, item('E1-0.ts.enc', Buffer.from('other')), 'later'));
  t.true(isRecorderError(error, 'STORE_CONFLICT'));
});

test('the index answers by device, officer, event and time', (t) => {
  const store = new EvidenceStore(tempDir(t));
  t.teardown(() => store.close());
  const add = (id: string, patch: Partial<StoredItem>) => {
    const data = Buffer.from(id);
    const path = store.incomingPath('x', id);
    writeFileSync(path, data);
    store.put(path, item(id, data, patch), 'now');
  };
  add('a', { officer: 'O1', start: '2026-11-23T08:00:00Z', end: '2026-11-23T08:00:10Z' });
  add('b', { officer: 'O2', event: 'E2', start: '2026-11-23T09:00:00Z', end: '2026-11-23T09:00:10Z' });
  add('c', { device: 'HN-CS-0002', start: '2026-11-23T10:00:00Z', end: '2026-11-23T10:00:10Z' });
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
  const stored = store.put(path, item('x', data), 'now');
  t.is(await store.checkObject(stored), null);
  const object = store.objectPath(stored.sha256);
  chmodSync(object, 0o644);
  writeFileSync(object, '0123456780');
  t.is(await store.checkObject(stored), 'STORE_OBJECT_HASH');
  writeFileSync(object, '0123');
  t.is(await store.checkObject(stored), 'STORE_OBJECT_SIZE');
  t.is(await store.checkObject({ ...stored, sha256: 'f'.repeat(64) }), 'STORE_OBJECT_MISSING');
});
