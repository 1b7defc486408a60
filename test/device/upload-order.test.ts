// Issue 6 build item 1: events with marks upload first, then oldest first. Real sealing, a real
// state file, the real UploadRunner over the in-process wire to a station's UploadReceiver.
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import fsPromises from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { recoverSpool } from '../../device/sealing/recover-spool.ts';
import { Sealer } from '../../device/sealing/sealer.ts';
import { StateStore } from '../../device/state-store.ts';
import { UploadRunner } from '../../device/upload-runner.ts';
import type { UploadRoundResult } from '../../device/uploader.ts';
import type { UploadReceiver } from '../../gateway/upload-receiver.ts';
import type { Offer } from '../../protocol/upload.ts';
import { evidenceWorld } from '../helpers/evidence-rig.ts';
import { testCenterKeys } from '../helpers/media.ts';
import { sealingRig, sealMeta } from '../helpers/sealing.ts';
import { TestWire } from '../helpers/upload-wire.ts';

/** The wire, noting each offer in the order the station's receiver gets it. */
class RecordingWire extends TestWire {
  readonly offers: { id: string; event: string }[] = [];
  constructor(receiver: UploadReceiver, device: string) {
    super(receiver, device);
  }
  override async sendOffer(offer: Offer): Promise<void> {
    this.offers.push({ id: offer.id, event: String(offer.entry.body.event) });
    await super.sendOffer(offer);
  }
}

const T0 = Date.parse('2026-11-22T10:00:00.000Z');

type World = ReturnType<typeof evidenceWorld>;

/** The real UploadRunner, docked and connected over `wire`, until it is idle; returns its rounds. */
async function uploadUntilIdle(
  t: ExecutionContext,
  wire: TestWire,
  device: Awaited<ReturnType<World['device']>>,
  station: ReturnType<World['gateway']>,
  store: StateStore,
): Promise<UploadRoundResult[]> {
  const runner = new UploadRunner({
    link: wire,
    device: device.id,
    evidenceDir: device.evidenceDir,
    journalPath: device.journalPath,
    gatewayKey: station.receiptKeys.publicKey,
    store,
    journal: device.journal,
    chunkBytes: 8192,
    replyTimeoutMs: 5000,
  });
  t.teardown(() => runner.stop());
  const rounds: UploadRoundResult[] = [];
  runner.on('round', (r: UploadRoundResult) => rounds.push(r));
  // The runner's timers are unref'd (they must not keep a device process alive): this one keeps
  // the test's process up until the runner is idle, and bounds the wait.
  let guard: NodeJS.Timeout | undefined;
  const idle = Promise.race([
    new Promise((resolve) => runner.once('idle', resolve)),
    new Promise((_, reject) => {
      guard = setTimeout(() => reject(new Error(`not idle: ${JSON.stringify(rounds)}`)), 60_000);
    }),
  ]);
  runner.setDocked(true);
  runner.setConnected(true);
  await idle.finally(() => clearTimeout(guard));
  return rounds;
}

test('a marked event uploads all its segments first (also those sealed before the mark), then the rest oldest first', async (t) => {
  const world = evidenceWorld(t);
  const device = await world.device('HN-CS-0007');
  const station = world.gateway('station', 'station');
  const store = await StateStore.open(join(device.dir, 'state.json'));
  let clock = T0;
  const sealer = new Sealer({
    evidenceDir: device.evidenceDir,
    journal: device.journal,
    centerPublicKey: testCenterKeys().publicKey,
    state: store,
    now: () => new Date(clock),
  });
  let n = 0;
  const seal = async (event: string, segment: number) => {
    const spoolPath = join(device.dir, 'spool', `s-${n++}.ts`);
    writeFileSync(spoolPath, randomBytes(20_000));
    const start = new Date(clock);
    await sealer.seal(spoolPath, sealMeta({ event, segment, start, end: new Date(clock + 10_000) }));
    clock += 10_000;
  };
  // A: oldest, unmarked. B: a mark between its second and third segment. C: newest, unmarked.
  await seal('A', 0);
  await seal('A', 1);
  await seal('B', 0);
  await seal('B', 1);
  // What the recorder does on a mark press: the journal entry, then the state's mark set.
  await device.journal.append('mark', { event: 'B', index: 1, at: new Date(clock).toISOString() });
  await store.markEvent('B');
  await seal('B', 2);
  await seal('B', 3);
  await seal('C', 0);
  await seal('C', 1);
  t.deepEqual(
    store.data.uploadQueue.map((i) => `${i.event}:${store.isMarked(i)}`),
    ['A:false', 'A:false', 'B:true', 'B:true', 'B:true', 'B:true', 'C:false', 'C:false'],
  );

  const wire = new RecordingWire(station.receiver, device.id);
  await uploadUntilIdle(t, wire, device, station, store);

  t.deepEqual(
    wire.offers.map((o) => o.id),
    [
      'B_00000.ts.rse',
      'B_00001.ts.rse',
      'B_00002.ts.rse',
      'B_00003.ts.rse',
      'A_00000.ts.rse',
      'A_00001.ts.rse',
      'C_00000.ts.rse',
      'C_00001.ts.rse',
    ],
  );
  t.deepEqual(store.data.uploadQueue, [], 'every item receipted');
  t.deepEqual(store.data.markedEvents, [], 'the mark set is pruned with the last item of B');
  t.deepEqual(JSON.parse(readFileSync(store.path, 'utf8')).markedEvents, []);
});

test('the items of a round find their journal entries in one read of the journal, not one per item', async (t) => {
  const world = evidenceWorld(t);
  const device = await world.device('HN-CS-0008');
  const station = world.gateway('station', 'station');
  const store = await StateStore.open(join(device.dir, 'state.json'));
  const sealer = new Sealer({
    evidenceDir: device.evidenceDir,
    journal: device.journal,
    centerPublicKey: testCenterKeys().publicKey,
    state: store,
  });
  const items = 12;
  for (let n = 0; n < items; n++) {
    const spoolPath = join(device.dir, 'spool', `s-${n}.ts`);
    writeFileSync(spoolPath, randomBytes(4096));
    await sealer.seal(spoolPath, sealMeta({ event: 'E', segment: n }));
  }
  // Counts the reads of the journal file, whoever makes them.
  const readFile = fsPromises.readFile;
  let journalReads = 0;
  fsPromises.readFile = ((path: unknown, ...rest: unknown[]) => {
    if (path === device.journalPath) journalReads++;
    return (readFile as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof readFile;
  syncBuiltinESMExports();
  t.teardown(() => {
    fsPromises.readFile = readFile;
    syncBuiltinESMExports();
  });

  const rounds = await uploadUntilIdle(t, new TestWire(station.receiver, device.id), device, station, store);

  t.is(rounds[0]?.receipted.length, items, JSON.stringify(rounds));
  t.deepEqual(store.data.uploadQueue, []);
  // The journal sync before and after the round, and one read for the entries of all twelve.
  t.true(
    journalReads <= 2 * rounds.length + 1,
    `${journalReads} reads of the journal in ${rounds.length} round(s)`,
  );
});

test('a crash between the mark entry and the state write: start-up recovery marks the event from the journal', async (t) => {
  const { dir, spool, journal, state, sealer } = await sealingRig(t);
  for (const [event, segment] of [
    ['OLD', 0],
    ['M', 0],
    ['M', 1],
  ] as const) {
    const path = join(spool, `seg-${event}-${segment}.ts`);
    writeFileSync(path, randomBytes(4096));
    await sealer.seal(path, sealMeta({ event, segment }));
  }
  // The mark reached the journal (fsync'd) but the power went before the state file was written.
  await journal.append('mark', { event: 'M', index: 1, at: '2026-11-22T10:00:05.000Z' });
  // And the state file is one from before items carried their event.
  const onDisk = JSON.parse(readFileSync(state.path, 'utf8'));
  for (const item of onDisk.uploadQueue) delete item.event;
  delete onDisk.markedEvents;
  writeFileSync(state.path, JSON.stringify(onDisk));

  const reopened = await StateStore.open(join(dir, 'state.json'));
  t.deepEqual(
    reopened.data.uploadQueue.map((i) => i.event),
    [null, null, null],
    'loads as items of no known event',
  );
  t.deepEqual(reopened.data.markedEvents, []);
  const report = await recoverSpool(spool, { sealer, journal, officer: 'OF-0042', state: reopened });
  t.deepEqual(report.requeued, []);
  t.deepEqual(
    reopened.data.uploadQueue.map((i) => `${i.event}:${reopened.isMarked(i)}`),
    ['OLD:false', 'M:true', 'M:true'],
  );
  const after = JSON.parse(readFileSync(state.path, 'utf8'));
  t.deepEqual(after.markedEvents, ['M']);

  // An item the crash kept out of the queue altogether is queued again with its event.
  await reopened.removeUpload('M_00001.ts.rse');
  t.deepEqual(reopened.data.markedEvents, ['M'], 'M_00000 is still queued');
  await reopened.removeUpload('M_00000.ts.rse');
  t.deepEqual(reopened.data.markedEvents, []);
  const again = await recoverSpool(spool, { sealer, journal, officer: 'OF-0042', state: reopened });
  t.deepEqual(again.requeued.sort(), ['M_00000.ts.rse', 'M_00001.ts.rse']);
  t.deepEqual(reopened.data.markedEvents, ['M']);
  t.true(reopened.data.uploadQueue.filter((i) => i.event === 'M').every((i) => reopened.isMarked(i)));
});
