import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StateStore } from '../../device/state-store.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { opensOf, pathsOf, syncedBefore as isSyncedBefore, traceChild } from '../helpers/strace.ts';
import { tempDir } from '../helpers/temp.ts';

const WRITE_CHILD = fileURLToPath(new URL('./fixtures/state-write-child.ts', import.meta.url));

const item = (file: string, event: string | null = 'E1') => ({
  file,
  event,
  sha256: 'a'.repeat(64),
  bytes: 10,
  kind: 'segment',
  seq: 1,
  sealedAt: '2026-11-22T10:00:00.000Z',
  deadline: '2026-11-23T10:00:00.000Z',
});

test('state is written to the file (even under NODE_ENV=test) and read back', async (t) => {
  t.is(process.env.NODE_ENV, 'test', 'AVA sets NODE_ENV=test, the case JSONFilePreset gets wrong');
  const path = join(tempDir(t), 'state.json');
  const store = await StateStore.open(path);
  await store.setProfile({ id: 'HN-CS/HN-CS-0001', version: 3, evidenceDir: '/e', spoolDir: '/s' });
  await store.setJournalHead({ seq: 7, hash: 'b'.repeat(64) });
  await store.enqueueUpload(item('x.rse'));
  await store.enqueueUpload(item('y.rse'));
  await store.enqueueUpload(item('x.rse'));
  await store.count('segments');
  await store.count('segments');
  const onDisk = JSON.parse(readFileSync(path, 'utf8'));
  t.is(onDisk.profile.version, 3);
  t.deepEqual(onDisk.journalHead, { seq: 7, hash: 'b'.repeat(64) });
  t.deepEqual(
    onDisk.uploadQueue.map((i: { file: string }) => i.file),
    ['y.rse', 'x.rse'],
  );
  t.is(onDisk.counters.segments, 2);

  const again = await StateStore.open(path);
  t.is(again.data.uploadQueue.length, 2);
  t.true(await again.removeUpload('x.rse'));
  t.false(await again.removeUpload('x.rse'));
  // the known head never goes back
  await again.setJournalHead({ seq: 3, hash: 'c'.repeat(64) });
  t.is((await StateStore.peek(path)).journalHead?.seq, 7);
  t.deepEqual(
    (await StateStore.peek(path)).uploadQueue.map((i) => i.file),
    ['y.rse'],
  );
});

test('a state file that is not JSON is a coded error, left untouched', async (t) => {
  const path = join(tempDir(t), 'state.json');
  writeFileSync(path, '{"format": "recorder-state/1", ');
  const error = await t.throwsAsync(StateStore.open(path));
  t.true(isRecorderError(error, 'STATE_INVALID'));
  t.is(readFileSync(path, 'utf8'), '{"format": "recorder-state/1", ');
});

test('peek of a missing state file gives empty state without creating it', async (t) => {
  const path = join(tempDir(t), 'none.json');
  const state = await StateStore.peek(path);
  t.is(state.journalHead, null);
  t.throws(() => readFileSync(path));
});

test('issue 6: items keep their event and the mark set survives reopening; a receipt prunes it with the last item', async (t) => {
  const path = join(tempDir(t), 'state.json');
  const store = await StateStore.open(path);
  await store.enqueueUpload(item('a-0.rse', 'A'));
  await store.enqueueUpload(item('b-0.rse', 'B'));
  await store.enqueueUpload(item('b-1.rse', 'B'));
  await store.markEvent('B');
  await store.markEvent('B');
  const onDisk = JSON.parse(readFileSync(path, 'utf8'));
  t.deepEqual(onDisk.markedEvents, ['B'], 'marking twice stores it once');
  t.deepEqual(
    onDisk.uploadQueue.map((i: { event: string }) => i.event),
    ['A', 'B', 'B'],
  );

  const again = await StateStore.open(path);
  t.deepEqual(again.data.markedEvents, ['B']);
  t.deepEqual(
    again.data.uploadQueue.map((i) => again.isMarked(i)),
    [false, true, true],
  );
  await again.removeUpload('b-0.rse');
  t.deepEqual(again.data.markedEvents, ['B'], 'b-1 is still queued');
  await again.removeUpload('b-1.rse');
  t.deepEqual(again.data.markedEvents, [], 'pruned with its last queued item');
  t.deepEqual((await StateStore.peek(path)).markedEvents, []);
});

test('issue 6: a state file from before events and marks loads: items of no event, nothing marked', async (t) => {
  const path = join(tempDir(t), 'state.json');
  const { event: _, ...old } = item('old.rse');
  writeFileSync(
    path,
    JSON.stringify({
      format: 'recorder-state/1',
      profile: null,
      keys: null,
      uploadQueue: [old],
      counters: {},
    }),
  );
  t.is((await StateStore.peek(path)).uploadQueue[0]!.event, null);
  const store = await StateStore.open(path);
  t.is(store.data.uploadQueue[0]!.event, null);
  t.deepEqual(store.data.markedEvents, []);
  t.false(store.isMarked(store.data.uploadQueue[0]!));
  // Recovery fills in events from the journal and adds the journal's marks for queued events only.
  await store.reconcileEvents((file) => (file === 'old.rse' ? 'OLD' : null), new Set(['OLD', 'GONE']));
  t.is(store.data.uploadQueue[0]!.event, 'OLD');
  t.deepEqual(store.data.markedEvents, ['OLD']);
  const onDisk = JSON.parse(readFileSync(path, 'utf8'));
  t.is(onDisk.uploadQueue[0].event, 'OLD');
  t.deepEqual(onDisk.markedEvents, ['OLD']);
});

test("every write of the state file is fsync'd before it is renamed over the file, and the directory after (strace)", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state.json');
  const { code, stderr, calls } = await traceChild(WRITE_CHILD, [path], join(dir, 'strace.log'));
  t.is(code, 0, stderr);
  t.is(JSON.parse(readFileSync(path, 'utf8')).counters.traced, 4);

  const paths = pathsOf;
  const syncedBefore = (opened: number, end: number) => isSyncedBefore(calls, opened, end);
  const opens = (file: string) => opensOf(calls, file);
  const renames = calls.flatMap((c, i) =>
    c.name.startsWith('rename') && paths(c)[1] === path
      ? [{ tmp: paths(c)[0]!, i, ok: c.result === '0' }]
      : [],
  );
  t.true(
    renames.length >= 3,
    `state.json is replaced by rename (at open and for each change): ${renames.length}`,
  );
  for (const { tmp, i, ok } of renames) {
    t.true(ok);
    t.is(dirname(tmp), dir, 'the temporary file is a sibling, so the rename is atomic');
    const opened =
      opens(tmp)
        .filter((n) => n < i)
        .pop() ?? -1;
    t.true(opened >= 0 && syncedBefore(opened, i), `${tmp} is fsync'd before it is renamed over state.json`);
    const dirOpened = opens(dir).find((n) => n > i) ?? -1;
    t.true(
      dirOpened > i && syncedBefore(dirOpened, calls.length),
      "the directory is fsync'd after the rename",
    );
  }
});
