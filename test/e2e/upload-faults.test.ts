/**
 * Issue 6 fault tests over the real transport: mutual-TLS MQTT on loopback, the real UploadRunner
 * on the device side (test/helpers/mqtt-upload-device.ts), evidence sealed by the real Sealer.
 *
 * - the gateway as a real `recorder gateway run` process, SIGKILLed mid-upload and started again on
 *   the same configuration: partial data never enters the store, the upload resumes from what the
 *   incoming file holds, exactly one object is stored, the receipt is journaled before the delete;
 * - the same process SIGKILLed after it stored the first of a stream of small items, while it is
 *   receiving, verifying and storing the next: every object whole, each item stored once;
 * - a gateway that answers an offer with a receipt for something else: the device refuses to delete
 *   and journals the refusal (`receipt-refused`), then accepts the honest receipt.
 *
 * A kill landing exactly between the store's rename and its index row cannot be timed from outside;
 * test/gateway/upload.test.ts builds what it leaves on disk instead.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { EvidenceStore, incomingFileName } from '../../gateway/evidence-store.ts';
import { loadGatewayConfig } from '../../gateway/config.ts';
import { startGateway } from '../../gateway/gateway.ts';
import { deviceTopic } from '../../protocol/topics.ts';
import {
  checkReceipt,
  entryHash,
  signReceipt,
  type Offer,
  type Receipt,
  type UploadState,
} from '../../protocol/upload.ts';
import { runRecorder } from '../helpers/cli.ts';
import { evidenceWorld } from '../helpers/evidence-rig.ts';
import { GatewayProcess } from '../helpers/gateway-process.ts';
import { mqttUploadDevice } from '../helpers/mqtt-upload-device.ts';
import { waitFor } from '../helpers/wait.ts';

const DEVICE = 'HN-CS-0001';

/** Every file under `dir`, recursively (the store's objects are in two-hex-digit folders). */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesBelow(join(dir, e.name)) : [join(dir, e.name)],
  );
}

function journalLines(path: string): { kind: string; body: Record<string, unknown> }[] {
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

/** `recorder evidence verify --json`: exit 0 and its report. */
async function verify(t: ExecutionContext, configPath: string): Promise<{ ok: boolean; items: number }> {
  const result = await runRecorder(['evidence', 'verify', '--config', configPath, '--json']);
  t.is(result.code, 0, result.stdout + result.stderr);
  return JSON.parse(result.stdout) as { ok: boolean; items: number };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

test('the gateway SIGKILLed mid-upload and restarted: partial data never enters the store, the upload resumes', async (t) => {
  const world = evidenceWorld(t);
  const station = world.gateway('station', 'station');
  // Until the upload is over the store is read only through `recorder evidence`, as an operator
  // would: no connection of the test keeps the index (and its WAL) open across the kill.
  station.store.close();
  const rig = await world.device(DEVICE);
  const item = await rig.seal(12 * 1024 * 1024);
  const original = readFileSync(join(rig.evidenceDir, item.file));
  t.is(sha256(original), item.sha256);

  let gateway = await GatewayProcess.start(t, station.configPath);
  // Restarted on the same port: the device's configuration names one address.
  station.writeConfig({ listen: { host: '127.0.0.1', port: gateway.port } });
  const root = join(station.dir, 'evidence');
  const incoming = join(root, 'incoming', incomingFileName(DEVICE, item.file));
  const size = () => {
    try {
      return statSync(incoming).size;
    } catch {
      return 0;
    }
  };
  const device = mqttUploadDevice(
    t,
    rig,
    `mqtts://127.0.0.1:${gateway.port}`,
    world.pki.unit,
    station.receiptKeys.publicKey,
  );

  // Mid-transfer: some of the item is on the gateway's disk, not all of it.
  await waitFor(() => size() >= 512 * 1024, 60_000, 'the first bytes in incoming/');
  const killed = await gateway.kill('SIGKILL');
  t.is(killed.signal, 'SIGKILL');
  const survived = size();
  t.true(survived > 0 && survived < item.bytes, `${survived} of ${item.bytes} bytes in incoming/`);
  t.deepEqual(device.pending(), [item.file]);

  // Nothing of it entered the store: no object, no index row, and the store verifies.
  t.deepEqual(filesBelow(join(root, 'objects')), []);
  t.like(await verify(t, station.configPath), { ok: true, items: 0 });

  const statesBefore = device.states.length;
  gateway = await GatewayProcess.start(t, station.configPath);
  await waitFor(() => device.pending().length === 0, 60_000, 'the upload to finish after the restart');

  // It resumed from what the incoming file held, never from further on.
  const resumed = device.states.slice(statesBefore).find((s) => s.id === item.file && s.status === 'send');
  t.truthy(resumed, JSON.stringify(device.states.slice(statesBefore)));
  t.true(resumed!.offset > 0, `resumed at ${resumed!.offset}`);
  t.true(resumed!.offset <= survived, `resumed at ${resumed!.offset}, ${survived} bytes survived`);
  t.log(`killed with ${survived} of ${item.bytes} bytes in incoming/, resumed at ${resumed!.offset}`);

  // Exactly one object, its bytes the device's, indexed once; incoming/ is empty.
  const objects = filesBelow(join(root, 'objects'));
  t.is(objects.length, 1);
  t.is(sha256(readFileSync(objects[0]!)), item.sha256);
  t.deepEqual(readdirSync(join(root, 'incoming')), []);
  const store = new EvidenceStore(root);
  t.teardown(() => store.close());
  const rows = store.list();
  t.is(rows.length, 1);
  t.like(rows[0], { id: item.file, device: DEVICE, sha256: item.sha256, bytes: item.bytes });
  t.truthy(rows[0]!.receipt);

  // The device journaled the receipt while it still held the file, and deleted it after that.
  const receipts = journalLines(rig.journalPath).filter((e) => e.kind === 'upload-receipt');
  t.deepEqual(
    receipts.map((r) => r.body.file),
    [item.file],
  );
  t.is(device.journaled.length, 1);
  t.like(device.journaled[0], { kind: 'upload-receipt', fileExisted: true, queued: true });
  t.deepEqual(readdirSync(rig.evidenceDir), []);

  // The journal with its receipt reaches the station; then the whole store verifies.
  // (a round that receipted something syncs the journal again before it ends)
  await waitFor(
    () => device.rounds.some((r) => r.receipted.includes(item.file)),
    10_000,
    'the round with the receipt',
  );
  t.like(await verify(t, station.configPath), { ok: true, items: 1 });
  // The restarted gateway also stops cleanly.
  t.like(await gateway.kill('SIGTERM'), { code: 0 });
});

test('the gateway SIGKILLed while it stores a stream of small items: each is stored whole and once, none lost', async (t) => {
  const world = evidenceWorld(t);
  const station = world.gateway('station', 'station');
  station.store.close();
  const rig = await world.device(DEVICE);
  const items = [];
  for (let i = 0; i < 16; i++) items.push(await rig.seal(150_000 + i * 1000));
  let gateway = await GatewayProcess.start(t, station.configPath);
  station.writeConfig({ listen: { host: '127.0.0.1', port: gateway.port } });
  const root = join(station.dir, 'evidence');
  const device = mqttUploadDevice(
    t,
    rig,
    `mqtts://127.0.0.1:${gateway.port}`,
    world.pki.unit,
    station.receiptKeys.publicKey,
  );
  // Killed just after it stored the first: it is then verifying, moving and indexing the next ones.
  await waitFor(() => gateway.logs().some((r) => r.msg === 'upload stored'), 60_000, 'the first item stored');
  await gateway.kill('SIGKILL');
  const storedBefore = gateway.logs().filter((r) => r.msg === 'upload stored').length;
  t.true(device.pending().length > 0, 'killed before the last item');

  // Whatever it was doing, every object in the store is complete (named by its own SHA-256).
  const complete = () =>
    filesBelow(join(root, 'objects')).every((f) => basename(f) === `${sha256(readFileSync(f))}.enc`);
  t.true(complete());
  t.like(await verify(t, station.configPath), { ok: true });

  gateway = await GatewayProcess.start(t, station.configPath);
  await waitFor(() => device.pending().length === 0, 60_000, 'every item receipted after the restart');
  await waitFor(
    () => device.rounds.some((r) => r.receipted.length > 0 && r.failed.length === 0),
    10_000,
    'a round that ends with its journal synced',
  );
  t.log(`${storedBefore} of ${items.length} stored before the kill`);

  // Each item exactly once: one object, one index row, one receipt journaled (file still there).
  const objects = filesBelow(join(root, 'objects'));
  t.is(objects.length, items.length);
  t.true(complete());
  t.deepEqual(readdirSync(join(root, 'incoming')), []);
  const receipts = device.journaled.filter((e) => e.kind === 'upload-receipt');
  t.deepEqual(receipts.map((e) => e.body.file).sort(), items.map((i) => i.file).sort());
  t.true(receipts.every((e) => e.fileExisted));
  t.deepEqual(readdirSync(rig.evidenceDir), []);
  t.like(await verify(t, station.configPath), { ok: true, items: items.length });
  t.like(await gateway.kill('SIGTERM'), { code: 0 });
});

test('a receipt replayed for another segment, or tampered with, or signed by another key: the device refuses to delete', async (t) => {
  const world = evidenceWorld(t);
  const station = world.gateway('station', 'station');
  station.store.close(); // the gateway below opens it
  const rig = await world.device(DEVICE);
  const a = await rig.seal(40_000);
  const b = await rig.seal(60_000);
  const entryB = rig.entries.get(b.file)!;
  const gw = await startGateway(loadGatewayConfig(station.configPath), { logSink: () => {} });
  t.teardown(() => gw.close());
  const unit = world.pki.unit;
  const otherKey = generateKeyPairSync('ed25519').privateKey;

  // One item at a time: the wrong answers for B are made from A's receipt, so A must be receipted
  // before B is offered.
  const device = mqttUploadDevice(t, rig, gw.url, unit, station.receiptKeys.publicKey, {
    replyTimeoutMs: 1000,
    itemsInFlight: 1,
  });
  // The gateway answers B's offers wrongly, once each way, then honestly. Only the gateway identity
  // may publish on upload/receipt (the ACL), so the wrong answers come from the gateway itself: its
  // upload service is wrapped, and the replies go out through its own broker over TLS. (Installed
  // before the device's connection completes: nothing is offered before it.)
  const receiptOfA = () => device.receipts.find((r) => r.receipt.id === a.file)!;
  const forB: Record<string, () => Receipt> = {
    // A's genuine receipt, verbatim: it names A, so B's attempt waits for its own and times out.
    replayed: () => receiptOfA(),
    // A's receipt with B's id swapped in: the signature no longer verifies.
    'id swapped': () => ({ ...receiptOfA(), receipt: { ...receiptOfA().receipt, id: b.file } }),
    // Exactly what the station would sign for B, but signed by another key.
    'foreign key': () =>
      signReceipt(
        {
          ...receiptOfA().receipt,
          id: b.file,
          entrySeq: b.seq,
          entryHash: entryHash(entryB),
          bytes: b.bytes,
          sha256: b.sha256,
        },
        otherKey,
      ),
    // Signed by the station's own key, naming B, but with A's content (a buggy gateway).
    're-signed for B': () =>
      signReceipt({ ...receiptOfA().receipt, id: b.file }, station.receiptKeys.privateKey),
  };
  const wrong = Object.entries(forB);
  const answered: string[] = [];
  const honest = gw.uploads.handle.bind(gw.uploads);
  gw.uploads.handle = async (who, topic, value) => {
    if (topic.name === 'uploadOffer' && (value as Offer).id === b.file && answered.length < wrong.length) {
      const [name, receipt] = wrong[answered.length]!;
      answered.push(name);
      const state: UploadState = { id: b.file, status: 'have', offset: b.bytes };
      await gw.broker.publishReply(deviceTopic('uploadState', unit, DEVICE), JSON.stringify(state));
      await gw.broker.publishReply(deviceTopic('uploadReceipt', unit, DEVICE), JSON.stringify(receipt()));
      return;
    }
    return honest(who, topic, value);
  };

  await waitFor(() => device.pending().length === 0, 60_000, 'B to be receipted in the end');
  t.deepEqual(
    answered,
    wrong.map(([name]) => name),
  );

  // Every wrong receipt reached the device over MQTT.
  t.true(device.receipts.filter((r) => r.receipt.id === a.file).length >= 2, 'A’s receipt came again for B');
  // The three that name B were checked and refused with a code, journaled while B's file and its
  // queue entry were still there; the verbatim replay named A and deleted nothing either.
  const refusals = device.journaled.filter((e) => e.kind === 'receipt-refused');
  t.deepEqual(
    refusals.map((e) => [e.body.file, e.body.code]),
    [
      [b.file, 'RECEIPT_INVALID'],
      [b.file, 'RECEIPT_INVALID'],
      [b.file, 'RECEIPT_MISMATCH'],
    ],
  );
  for (const r of refusals) {
    t.true(r.fileExisted && r.queued, JSON.stringify(r));
    t.is(r.body.seq, b.seq);
    t.regex(String(r.body.receiptHash), /^[0-9a-f]{64}$/);
  }
  t.true(device.rounds.some((r) => r.failed.some((f) => f.file === b.file && f.code === 'RECEIPT_INVALID')));
  t.true(device.rounds.some((r) => r.failed.some((f) => f.file === b.file && f.code === 'RECEIPT_MISMATCH')));
  t.true(
    device.log.some((l) => /RECEIPT_INVALID/.test(l)),
    device.log.join('\n'),
  );

  // Only the honest receipts were journaled as receipts, each before its file was deleted, and the
  // refusals all came before B's receipt.
  const kinds = device.journaled.map((e) => `${e.kind} ${String(e.body.file)}`);
  t.deepEqual(kinds, [
    `upload-receipt ${a.file}`,
    `receipt-refused ${b.file}`,
    `receipt-refused ${b.file}`,
    `receipt-refused ${b.file}`,
    `upload-receipt ${b.file}`,
  ]);
  for (const e of device.journaled.filter((x) => x.kind === 'upload-receipt')) t.true(e.fileExisted);
  t.deepEqual(readdirSync(rig.evidenceDir), []);

  // The journal the auditor reads says the same, signed and chained; B's honest receipt verifies.
  const lines = journalLines(rig.journalPath);
  t.deepEqual(
    lines.filter((e) => e.kind === 'upload-receipt').map((e) => e.body.file),
    [a.file, b.file],
  );
  t.is(lines.filter((e) => e.kind === 'receipt-refused').length, 3);
  const honestB = device.receipts.filter((r) => r.receipt.id === b.file).at(-1)!;
  t.notThrows(() =>
    checkReceipt(
      honestB,
      { id: b.file, device: DEVICE, entry: entryB, bytes: b.bytes, sha256: b.sha256 },
      station.receiptKeys.publicKey,
    ),
  );
  t.is(gw.uploads.store.list({ device: DEVICE }).length, 2);
});
