import test from 'ava';
import type { ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Relay, type RelayFailure, type RelayOptions, type RelayRoundResult } from '../../gateway/relay.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import type { JournalEntry, JsonObject } from '../../protocol/journal-entry.ts';
import { UploadSender } from '../../protocol/upload-sender.ts';
import {
  checkJournalReceipt,
  parseJournalReceipt,
  signReceipt,
  type JournalReceipt,
  type JournalState,
  type Receipt,
} from '../../protocol/upload.ts';
import { issueCertificate } from '../../gateway/ca.ts';
import { testPki } from '../helpers/pki.ts';
import { runRecorder } from '../helpers/cli.ts';
import {
  evidenceWorld,
  type DeviceRig,
  type EvidenceWorld,
  type GatewayRig,
} from '../helpers/evidence-rig.ts';
import { TestWire } from '../helpers/upload-wire.ts';
import { waitFor } from '../helpers/wait.ts';
import { recoverSpool } from '../../device/sealing/recover-spool.ts';
import { Sealer } from '../../device/sealing/sealer.ts';
import { testCenterKeys } from '../helpers/media.ts';
import { sealMeta } from '../helpers/sealing.ts';

const DAY = 86_400_000;
const timers = {
  setTimeout: (f: () => void, ms: number) => setTimeout(f, ms),
  clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
  now: () => Date.now(),
};

interface World {
  evidence: EvidenceWorld;
  station: GatewayRig;
  center: GatewayRig;
  device: DeviceRig;
  relay(options?: Partial<RelayOptions>): Relay;
}

async function world(t: ExecutionContext, sizes = [30_000, 4_000]): Promise<World> {
  const evidence = evidenceWorld(t);
  const station = evidence.gateway('station', 'station');
  const center = evidence.gateway('center', 'center');
  // The station's config names its center, so `evidence verify` checks the center's receipts too.
  station.writeConfig({
    upstream: {
      url: 'mqtts://127.0.0.1:8884',
      cert: 'unused.pem',
      key: 'unused.pem',
      ca: 'unused.pem',
      receiptKey: center.receiptPubPath,
    },
  });
  const device = await evidence.device('HN-CS-0001');
  for (const size of sizes) await device.seal(size);
  await evidence.upload(device, station);
  return {
    evidence,
    station,
    center,
    device,
    relay: (options = {}) =>
      new Relay({
        store: station.store,
        linkFor: (d) => new TestWire(center.receiver, d),
        centerReceiptKey: center.receiptKeys.publicKey,
        chunkBytes: 8192,
        replyTimeoutMs: 300,
        ...options,
      }),
  };
}

async function verifyCli(gateway: GatewayRig) {
  const r = await runRecorder(['evidence', 'verify', '--config', gateway.configPath, '--json']);
  return {
    code: r.code,
    report: JSON.parse(r.stdout) as { ok: boolean; items: number; problems: unknown[] },
  };
}

test('the relay carries receipted items and the journal to the center; verify passes at both', async (t) => {
  const w = await world(t);
  const relay = w.relay();
  const result = await relay.runOnce();
  t.deepEqual(result.failed, []);
  t.is(result.relayed.length, 2);
  t.is(result.journals.length, 1);
  // The center holds the same ciphertext, checked at ingest, and the device's whole chain.
  for (const item of w.station.store.list()) {
    const there = w.center.store.get(item.device, item.id)!;
    t.is(there.sha256, item.sha256);
    t.is(there.entryLine, item.entryLine);
    const ingest = w.center.store.lifecycle(item.device, item.id)!.ingest!;
    t.true(ingest.ok);
    t.is(ingest.plainSha256, (JSON.parse(item.entryLine) as JournalEntry).body.sha256 as string);
    const life = w.station.store.lifecycle(item.device, item.id)!;
    t.truthy(life.relayedAt);
    const receipt = JSON.parse(life.centerReceipt!) as Receipt;
    t.is(receipt.receipt.role, 'center');
    t.is(receipt.receipt.holder, 'center');
  }
  t.deepEqual(w.center.store.journalLines(w.device.id), w.station.store.journalLines(w.device.id));
  // The center learnt the device's key from the certificate the station sent along.
  t.is(w.center.store.knownDevice(w.device.id)!.certPem, w.device.certPem);
  // A second round has nothing to do.
  const again = await relay.runOnce();
  t.deepEqual([again.relayed, again.journals, again.failed], [[], [], []]);

  const [atStation, atCenter] = await Promise.all([verifyCli(w.station), verifyCli(w.center)]);
  t.is(atStation.code, 0, JSON.stringify(atStation.report.problems));
  t.is(atCenter.code, 0, JSON.stringify(atCenter.report.problems));
  t.is(atCenter.report.items, 2);
});

function evidenceOf(entry: JournalEntry): { file: string; bytes: number; sha256: string } {
  return (entry.body as { evidence: { file: string; bytes: number; sha256: string } }).evidence;
}

/** The device signs an entry for a file that was not sealed from that plaintext. */
async function craftedItem(
  w: World,
  mutate: (evidence: Buffer, body: JsonObject) => Buffer,
): Promise<{ id: string; entry: JournalEntry }> {
  const genuine = w.device.entries.get([...w.device.entries.keys()][0]!)!;
  const original = readFileSync(w.station.store.objectPath(evidenceOf(genuine).sha256));
  const body = JSON.parse(JSON.stringify(genuine.body)) as JsonObject;
  const id = `forged-${w.device.items.length}-${Date.now()}.rse`;
  const bytes = mutate(Buffer.from(original), body);
  writeFileSync(join(w.device.evidenceDir, id), bytes);
  body.evidence = { file: id, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  const entry = await w.device.journal.append('segment', body);
  w.device.items.push({
    file: id,
    sha256: (body.evidence as { sha256: string }).sha256,
    bytes: bytes.length,
    seq: entry.seq,
    sealedAt: entry.time,
  });
  w.device.entries.set(id, entry);
  return { id, entry };
}

test('the center decrypts at ingest: a ciphertext or plaintext that does not match is refused and nothing stored', async (t) => {
  const w = await world(t, [20_000]);
  // (1) A flipped ciphertext byte under a signed entry: the GCM tag fails.
  const flipped = await craftedItem(w, (bytes) => {
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0x40;
    return bytes;
  });
  // (2) Intact ciphertext, but the signed plaintext hash is another file's.
  const wrongPlain = await craftedItem(w, (bytes, body) => {
    body.sha256 = 'f'.repeat(64);
    return bytes;
  });
  const station = w.station;
  await w.evidence.upload(w.device, station);
  t.is(station.store.list().length, 3, 'the station does not decrypt: it stores all three');

  const relay = w.relay();
  const alerts: { id: string | null; code: string }[] = [];
  relay.on('alert', (a: { id: string | null; code: string }) => alerts.push(a));
  const result = await relay.runOnce();
  t.is(result.relayed.length, 1);
  const refused = (id: string) => result.failed.find((f) => f.id === id);
  t.is(refused(flipped.id)?.code, 'UPLOAD_REFUSED');
  t.regex(refused(flipped.id)!.message, /EVIDENCE_DECRYPT_FAILED/);
  t.regex(refused(wrongPlain.id)!.message, /EVIDENCE_PLAINTEXT_MISMATCH/);
  t.true(alerts.some((a) => a.id === flipped.id));
  t.true(w.center.alerts.some((a) => a.code === 'EVIDENCE_DECRYPT_FAILED' && a.id === flipped.id));
  t.true(w.center.alerts.some((a) => a.code === 'EVIDENCE_PLAINTEXT_MISMATCH' && a.id === wrongPlain.id));
  for (const { id } of [flipped, wrongPlain]) {
    t.is(w.center.store.get(w.device.id, id), null);
    const life = station.store.lifecycle(w.device.id, id)!;
    t.is(life.relayedAt, null);
    t.regex(life.relayError!, /UPLOAD_REFUSED/);
    t.true(existsSync(station.store.objectPath(station.store.get(w.device.id, id)!.sha256)));
  }
  t.deepEqual(readdirSync(join(w.center.dir, 'evidence', 'incoming')), []);

  // (3) A station that tampers with the ciphertext and recomputes the hash cannot make the
  // device's signed entry name it: refused before a byte is written.
  const item = station.store.list().find((i) => i.id !== flipped.id && i.id !== wrongPlain.id)!;
  const tampered = readFileSync(station.store.objectPath(item.sha256));
  tampered[50] = tampered[50]! ^ 1;
  const sender = new UploadSender({
    link: new TestWire(w.center.receiver, w.device.id),
    timers,
    replyTimeoutMs: 1000,
  });
  const entry = JSON.parse(item.entryLine) as JournalEntry;
  const forged = sender.sendItem(
    {
      id: `${item.id}.x`,
      entry,
      bytes: tampered.length,
      sha256: createHash('sha256').update(tampered).digest('hex'),
      deviceCert: w.device.certPem,
    },
    async (o, into) => tampered.copy(into, 0, o, o + into.length),
  );
  const error = await t.throwsAsync(forged);
  t.true(isRecorderError(error, 'UPLOAD_REFUSED'));
  t.regex(error!.message, /UPLOAD_FORGED/);

  // (4) A certificate of another device, or of this device from a foreign CA, is refused.
  const other = await w.evidence.device('HN-CS-0002');
  const foreignPki = testPki(join(w.evidence.dir, 'foreign-pki'));
  const foreign = issueCertificate(foreignPki.caDir, {
    role: 'device',
    id: w.device.id,
    evidencePublicKeyPem: w.device.keys.publicKey.export({ type: 'spki', format: 'pem' }) as string,
  });
  for (const [cert, why] of [
    [other.certPem, /names device\/HN-CS-0002/],
    [foreign.certPem, /does not chain to a unit CA/],
  ] as const) {
    const refusedCert = await t.throwsAsync(
      sender.sendItem(
        { id: item.id, entry, bytes: item.bytes, sha256: item.sha256, deviceCert: cert },
        async (o, into) =>
          readFileSync(station.store.objectPath(item.sha256)).copy(into, 0, o, o + into.length),
      ),
    );
    t.regex(refusedCert!.message, /DEVICE_CERT_INVALID/);
    t.true(w.center.alerts.some((a) => a.code === 'DEVICE_CERT_INVALID' && why.test(a.message)));
  }
});

/** Flips one bit of a stored object in place (bit rot: same size, same read-only mode). */
function flipBit(path: string, at: number): void {
  chmodSync(path, 0o644);
  const bytes = readFileSync(path);
  bytes[at] = bytes[at]! ^ 1;
  writeFileSync(path, bytes);
  chmodSync(path, 0o444);
}

/** One round, failing the test when it does not end: a sender that resends for ever never does. */
function roundWithin(relay: Relay, ms = 60_000): Promise<RelayRoundResult> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    relay.runOnce(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the relay round did not end within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

test('one damaged object at the station is given up after a resend and alerted as STORE_OBJECT_HASH; the other items go', async (t) => {
  const w = await world(t, [30_000, 4_000, 4_000]);
  const [damaged, ...good] = w.station.store.list();
  const object = w.station.store.objectPath(damaged!.sha256);
  flipBit(object, 100);
  const relay = w.relay();
  const alerts: RelayFailure[] = [];
  relay.on('alert', (a: RelayFailure) => alerts.push(a));
  const result = await roundWithin(relay);
  t.deepEqual(
    result.relayed.map((r) => r.id),
    good.map((i) => i.id),
  );
  t.is(result.journals.length, 1);
  t.deepEqual(
    result.failed.map((f) => [f.id, f.code]),
    [[damaged!.id, 'STORE_OBJECT_HASH']],
  );
  t.regex(result.failed[0]!.message, /damaged here/);
  t.deepEqual(
    alerts.map((a) => [a.id, a.code]),
    [[damaged!.id, 'STORE_OBJECT_HASH']],
  );
  // The first send and one resend, each refused by the center; nothing stored there.
  t.is(w.center.alerts.filter((a) => a.code === 'UPLOAD_HASH_MISMATCH').length, 2);
  t.is(w.center.store.get(w.device.id, damaged!.id), null);
  const life = w.station.store.lifecycle(w.device.id, damaged!.id)!;
  t.is(life.relayedAt, null);
  t.regex(life.relayError!, /STORE_OBJECT_HASH/);
  t.true(existsSync(object), 'the station keeps what it has');

  // The next round tries it again; once the object is whole again (restored), it goes.
  const again = await roundWithin(relay);
  t.deepEqual(
    again.failed.map((f) => f.code),
    ['STORE_OBJECT_HASH'],
  );
  flipBit(object, 100);
  const restored = await roundWithin(relay);
  t.deepEqual(restored.failed, []);
  t.deepEqual(
    restored.relayed.map((r) => r.id),
    [damaged!.id],
  );
  t.truthy(w.station.store.lifecycle(w.device.id, damaged!.id)!.relayedAt);
});

test('a link that corrupts every copy: the item is given up as UPLOAD_HASH_MISMATCH with its object intact, and goes once the link is sound', async (t) => {
  const w = await world(t, [20_000, 4_000]);
  const [first, second] = w.station.store.list();
  let corrupting = true;
  const relay = w.relay({
    linkFor: (d) => {
      const wire = new TestWire(w.center.receiver, d);
      const send = wire.sendChunk.bind(wire);
      wire.sendChunk = (id, offset, data) => {
        if (!corrupting || id !== first!.id || offset !== 0) return send(id, offset, data);
        const bad = Buffer.from(data);
        bad[0] = bad[0]! ^ 0xff;
        return send(id, offset, bad);
      };
      return wire;
    },
  });
  const alerts: RelayFailure[] = [];
  relay.on('alert', (a: RelayFailure) => alerts.push(a));
  const result = await roundWithin(relay);
  t.deepEqual(
    result.relayed.map((r) => r.id),
    [second!.id],
  );
  t.deepEqual(
    result.failed.map((f) => [f.id, f.code]),
    [[first!.id, 'UPLOAD_HASH_MISMATCH']],
  );
  t.deepEqual(
    alerts.map((a) => a.code),
    ['UPLOAD_HASH_MISMATCH'],
  );
  t.is(await w.station.store.checkObject(first!), null);
  corrupting = false;
  const next = await roundWithin(relay);
  t.deepEqual(next.failed, []);
  t.deepEqual(
    next.relayed.map((r) => r.id),
    [first!.id],
  );
});

test('center down, then up: the station keeps everything, retries with backoff and catches up', async (t) => {
  const w = await world(t, [10_000, 10_000]);
  const wires: TestWire[] = [];
  let up = false;
  const relay = w.relay({
    linkFor: (d) => {
      const wire = new TestWire(w.center.receiver, d);
      wire.up = up;
      wires.push(wire);
      return wire;
    },
    replyTimeoutMs: 100,
    maxAttempts: 1,
    backoffMinMs: 50,
    backoffMaxMs: 400,
  });
  const down = await relay.runOnce();
  t.is(down.relayed.length, 0);
  t.true(down.failed.length >= 2);
  t.true(down.failed.every((f) => f.code === 'UPLOAD_TIMEOUT'));
  t.is(w.center.store.list().length, 0);
  t.is(w.station.store.unrelayed().length, 2);

  const rounds: number[] = [];
  let twoFailed: () => void;
  const failing = new Promise<void>((resolve) => (twoFailed = resolve));
  relay.on('round', () => {
    rounds.push(Date.now());
    if (rounds.length === 2) twoFailed();
  });
  const relayed = new Promise<void>((resolve) =>
    relay.on('round', () => w.station.store.unrelayed().length === 0 && resolve()),
  );
  relay.start();
  t.teardown(() => relay.stop());
  await failing;
  t.is(w.station.store.unrelayed().length, 2, 'nothing relayed while the center is down');
  up = true;
  for (const wire of wires) wire.up = true;
  await relayed;
  await relay.stop();
  t.is(w.center.store.list().length, 2);
  t.deepEqual(w.center.store.journalLines(w.device.id), w.station.store.journalLines(w.device.id));
  for (const item of w.station.store.list())
    t.is(w.station.store.lifecycle(item.device, item.id)!.relayError, null);
});

/** A link to the center that loses every offer of the items named (the center never sees them). */
function losing(w: World, ids: string[]): RelayOptions['linkFor'] {
  return (d) => {
    const wire = new TestWire(w.center.receiver, d);
    const send = wire.sendOffer.bind(wire);
    wire.sendOffer = async (offer) => (ids.includes(offer.id) ? undefined : send(offer));
    return wire;
  };
}

test('items that keep failing never keep newer ones out of a round; items the center did not answer keep their place', async (t) => {
  const w = await world(t, [2_000, 2_000, 2_000]);
  // In the order the relay takes them (stored first; two items travel at once, so not list()'s).
  const [first, second, third] = w.station.store.unrelayed(3);
  const refusing: RelayOptions['linkFor'] = (d) => {
    const wire = new TestWire(w.center.receiver, d);
    const send = wire.sendOffer.bind(wire);
    wire.sendOffer = async (offer) => {
      if (![first!.id, second!.id].includes(offer.id)) return send(offer);
      setImmediate(() =>
        wire.emit('state', {
          id: offer.id,
          status: 'refused',
          offset: 0,
          code: 'UPLOAD_FORGED',
          reason: 'test',
        }),
      );
    };
    return wire;
  };
  const options = { batchItems: 2, maxAttempts: 1, replyTimeoutMs: 100 };
  // Refused, the item's own failure: the two oldest go to the back.
  const one = await w.relay({ ...options, linkFor: refusing }).runOnce();
  t.deepEqual(one.relayed, []);
  t.is(one.failed.filter((f) => f.id !== null).length, 2, 'the two oldest were tried and failed');
  const two = await w.relay({ ...options, linkFor: refusing }).runOnce();
  t.deepEqual(two.relayed, [{ device: third!.device, id: third!.id }]);

  // Unanswered (the center away): they keep their place, oldest first.
  const v = await world(t, [2_000, 2_000, 2_000]);
  const [a, b, c] = v.station.store.unrelayed(3);
  const away = await v.relay({ ...options, linkFor: losing(v, [a!.id, b!.id]) }).runOnce();
  t.deepEqual(away.relayed, []);
  const back = await v.relay(options).runOnce();
  t.deepEqual(
    back.relayed.map((r) => r.id),
    [a!.id, b!.id],
  );
  t.is(v.station.store.lifecycle(c!.device, c!.id)!.relayedAt, null, 'the newest waits for the next round');
});

test('a center receipt for another item is refused: nothing is marked relayed', async (t) => {
  const w = await world(t, [5_000, 6_000]);
  const [first, second] = w.station.store.list();
  // A genuine center receipt for the first item only.
  await w.relay({ linkFor: losing(w, [second!.id]), maxAttempts: 1, replyTimeoutMs: 100 }).runOnce();
  const genuine = JSON.parse(w.station.store.lifecycle(first!.device, first!.id)!.centerReceipt!) as Receipt;
  t.is(w.station.store.lifecycle(second!.device, second!.id)!.relayedAt, null);
  // A broken or malicious center now answers the second offer with receipts that are not right.
  for (const answer of [
    genuine, // signed by the center, but for the first item
    signReceipt({ ...genuine.receipt, id: second!.id }, w.center.receiptKeys.privateKey), // right id, wrong entry and hash
    signReceipt({ ...genuine.receipt, id: second!.id }, w.station.receiptKeys.privateKey), // not the center's key
  ]) {
    const relay = w.relay({
      linkFor: (d) => {
        const wire = new TestWire(w.center.receiver, d);
        wire.sendOffer = async (offer) => {
          setImmediate(() => {
            wire.emit('state', { id: offer.id, status: 'have', offset: offer.bytes });
            // Delivered under the offer's id, so only the receipt check can tell.
            wire.emit('receipt', { ...answer, receipt: { ...answer.receipt, id: offer.id } });
          });
        };
        return wire;
      },
    });
    const result = await relay.runOnce();
    t.deepEqual(result.relayed, []);
    t.true(
      result.failed.some(
        (f) => f.id === second!.id && ['RECEIPT_MISMATCH', 'RECEIPT_INVALID'].includes(f.code),
      ),
      JSON.stringify(result.failed),
    );
    t.is(w.station.store.lifecycle(second!.device, second!.id)!.relayedAt, null);
  }
  // The genuine center still takes it.
  t.deepEqual((await w.relay().runOnce()).relayed, [{ device: second!.device, id: second!.id }]);
});

test('the center receipts the journal it holds; a missing, forged or mismatched journal receipt leaves it unrelayed and alerted', async (t) => {
  const w = await world(t);
  const device = w.device.id;
  const last = w.station.store.journalHead(device)!;
  const centerKey = w.center.receiptKeys.privateKey;
  const answers: [string, (state: JournalState) => JournalState][] = [
    ['RECEIPT_MISSING', ({ receipt: _receipt, ...state }) => state],
    [
      'RECEIPT_INVALID',
      (s) => ({ ...s, receipt: signReceipt(s.receipt!.receipt, w.station.receiptKeys.privateKey) }),
    ],
    // Signed by the center, but for the line before: the center would not hold the station's last line.
    [
      'RECEIPT_MISMATCH',
      (s) => ({ ...s, receipt: signReceipt({ ...s.receipt!.receipt, seq: last.seq - 1 }, centerKey) }),
    ],
    [
      'RECEIPT_MISMATCH',
      (s) => ({ ...s, receipt: signReceipt({ ...s.receipt!.receipt, role: 'station' }, centerKey) }),
    ],
  ];
  for (const [code, tamper] of answers) {
    const relay = w.relay({
      linkFor: (d) => {
        const wire = new TestWire(w.center.receiver, d);
        wire.sendJournal = async (batch) => {
          const state = await w.center.receiver.journal(d, JSON.parse(JSON.stringify(batch)));
          setImmediate(() => wire.emit('journal-state', tamper(state)));
        };
        return wire;
      },
    });
    const alerts: RelayFailure[] = [];
    relay.on('alert', (a: RelayFailure) => alerts.push(a));
    const result = await relay.runOnce();
    t.deepEqual(result.journals, [], code);
    t.deepEqual(
      alerts.map((a) => [a.device, a.id, a.code]),
      [[device, null, code]],
    );
    t.is(w.station.store.relayedJournalHead(device), null, code);
  }

  // The genuine center: its receipt is kept, and names the station's last line.
  t.deepEqual((await w.relay().runOnce()).journals, [{ device, seq: last.seq }]);
  const relayed = w.station.store.relayedJournalHead(device)!;
  const body = checkJournalReceipt(
    parseJournalReceipt(JSON.parse(relayed.receipt!)),
    { device, ...last },
    w.center.receiptKeys.publicKey,
  );
  t.like(body, { kind: 'journal', role: 'center', holder: 'center', seq: last.seq, hash: last.hash });
  const ok = await verifyCli(w.station);
  t.is(ok.code, 0, JSON.stringify(ok.report.problems));

  // A receipt edited in the index (its seq moved back) no longer verifies, and verify says so.
  const db = new Database(join(w.station.dir, 'evidence', 'index.sqlite'));
  const edited = JSON.parse(relayed.receipt!) as JournalReceipt;
  edited.receipt.seq = last.seq - 1;
  db.prepare('UPDATE journal_relay SET seq = ?, hash = ?, receipt = ?').run(
    last.seq - 1,
    w.station.store.journalRows(device)[last.seq - 1]!.hash,
    JSON.stringify(edited),
  );
  const bad = await verifyCli(w.station);
  t.is(bad.code, 1);
  t.true(
    (bad.report.problems as { code: string }[]).some((p) => p.code === 'STORE_JOURNAL_RECEIPT_INVALID'),
    JSON.stringify(bad.report.problems),
  );
  // A head relayed before journal receipts (no receipt): verify names it, and the next round asks
  // the center for one.
  db.prepare('UPDATE journal_relay SET seq = ?, hash = ?, receipt = NULL').run(last.seq, last.hash);
  db.close();
  t.true(
    ((await verifyCli(w.station)).report.problems as { code: string }[]).some(
      (p) => p.code === 'STORE_JOURNAL_RECEIPT_INVALID',
    ),
  );
  // It sends the last line only: the center holds the rest, and answers with its head and receipt.
  const receiver = w.center.receiver;
  const journal = receiver.journal.bind(receiver);
  const batches: { from: number; lines: number }[] = [];
  receiver.journal = (d, payload, unit) => {
    const batch = payload as { from: number; lines: string[] };
    batches.push({ from: batch.from, lines: batch.lines.length });
    return journal(d, payload, unit);
  };
  t.deepEqual((await w.relay().runOnce()).journals, [{ device, seq: last.seq }]);
  t.true(last.seq > 0);
  t.deepEqual(batches, [{ from: last.seq, lines: 1 }]);
  t.truthy(w.station.store.relayedJournalHead(device)!.receipt);
  t.is((await verifyCli(w.station)).code, 0);
});

test('news wakes an idle relay at once, not one backing off from a failing center; the center coming back does', async (t) => {
  const w = await world(t, [3_000]);
  let centerUp = true;
  const relay = w.relay({
    linkFor: (d) => new TestWire(w.center.receiver, d, { onMessage: () => (centerUp ? 'pass' : 'drop') }),
    idleMs: 60_000,
    backoffMinMs: 60_000,
    backoffMaxMs: 60_000,
    maxAttempts: 1,
    // Long enough that a loaded machine's slow reply is not taken for the center being away (with
    // 200 ms the round meant to succeed sometimes failed under a parallel test run).
    replyTimeoutMs: 2_000,
  });
  const rounds: RelayRoundResult[] = [];
  relay.on('round', (r: RelayRoundResult) => rounds.push(r));
  relay.on('alert', () => undefined);
  t.teardown(() => relay.stop());
  const roundsReach = (n: number) => waitFor(() => rounds.length >= n, 30_000, `relay round ${n}`);
  const newItem = async () => {
    await w.device.seal(2_000);
    await w.evidence.upload(w.device, w.station);
  };

  relay.start();
  await roundsReach(1);
  t.is(rounds[0]!.relayed.length, 1);
  // Idle for a minute: news cuts the wait short.
  await newItem();
  relay.wake('news');
  await roundsReach(2);
  t.is(rounds[1]!.relayed.length, 1);
  // The center stops answering: the round fails and the relay backs off.
  centerUp = false;
  await newItem();
  relay.wake('news');
  await roundsReach(3);
  t.true(rounds[2]!.failed.length > 0);
  // Backing off: news does not bring the failing center another round.
  await newItem();
  relay.wake('news');
  await new Promise((r) => setTimeout(r, 1_000));
  t.is(rounds.length, 3);
  // The connection to the center is back: relay now, everything held goes.
  centerUp = true;
  relay.wake();
  await roundsReach(4);
  t.deepEqual(rounds[3]!.failed, []);
  t.is(w.station.store.unrelayed().length, 0);
  t.is(w.center.store.list().length, 4);
});

test('purge: after purgeAfterDays only the object of a relayed item goes; 0 keeps it for ever', async (t) => {
  const w = await world(t, [3_000, 3_000]);
  let clock = Date.parse('2026-11-23T12:00:00.000Z');
  const now = () => new Date(clock);
  const [first, second] = w.station.store.list();
  const object = (i: typeof first) => w.station.store.objectPath(i!.sha256);
  // The second item never reaches the center, so the center never receipts it.
  const round = (purgeAfterDays: number) =>
    w
      .relay({ now, purgeAfterDays, linkFor: losing(w, [second!.id]), maxAttempts: 1, replyTimeoutMs: 50 })
      .runOnce();
  t.deepEqual((await round(30)).relayed, [{ device: first!.device, id: first!.id }]);

  clock += 29 * DAY;
  t.deepEqual((await round(30)).purged, []);
  t.true(existsSync(object(first)));

  clock += 2 * DAY;
  t.deepEqual((await round(0)).purged, [], 'purgeAfterDays 0 keeps it for ever');
  t.true(existsSync(object(first)));

  t.deepEqual((await round(30)).purged, [{ device: first!.device, id: first!.id }]);
  t.false(existsSync(object(first)));
  // Never before the center's receipt, however old.
  t.true(existsSync(object(second)));
  // The row and both receipts stay; the purge is recorded; verify still passes.
  const life = w.station.store.lifecycle(first!.device, first!.id)!;
  t.is(life.purgedAt, new Date(clock).toISOString());
  t.truthy(life.centerReceipt);
  t.truthy(w.station.store.get(first!.device, first!.id)!.receipt);
  const stationOk = await verifyCli(w.station);
  t.is(stationOk.code, 0, JSON.stringify(stationOk.report.problems));
});

test('purged or relayed only with the center receipt: verify finds an item marked so without it, and purge keeps its object', async (t) => {
  const w = await world(t, [3_000, 3_000, 3_000, 3_000]);
  let clock = Date.parse('2026-11-23T12:00:00.000Z');
  const now = () => new Date(clock);
  const [first, second, third, fourth] = w.station.store.list();
  const others = [second!.id, third!.id, fourth!.id];
  const relay = w.relay({ now, linkFor: losing(w, others), maxAttempts: 1, replyTimeoutMs: 50 });
  const alerts: RelayFailure[] = [];
  relay.on('alert', (a: RelayFailure) => alerts.push(a));
  t.deepEqual((await relay.runOnce()).relayed, [{ device: first!.device, id: first!.id }]);
  const genuine = w.station.store.lifecycle(first!.device, first!.id)!.centerReceipt!;

  const db = new Database(join(w.station.dir, 'evidence', 'index.sqlite'));
  const set = (sql: string, item: { device: string; id: string }, ...args: unknown[]) =>
    db.prepare(`UPDATE items SET ${sql} WHERE device = ? AND id = ?`).run(...args, item.device, item.id);
  // Deleted and marked purged, though never relayed.
  const { chmodSync, unlinkSync } = await import('node:fs');
  chmodSync(w.station.store.objectPath(second!.sha256), 0o644);
  unlinkSync(w.station.store.objectPath(second!.sha256));
  set('purged_at = ?', second!, new Date(clock).toISOString());
  // Marked relayed long ago: with no center receipt, and with the first item's.
  set('relayed_at = ?', third!, '2026-01-01T00:00:00.000Z');
  set('relayed_at = ?, center_receipt = ?', fourth!, '2026-01-01T00:00:00.000Z', genuine);
  db.close();

  // Purge time for all three relayed marks: only the first item's object goes.
  clock += 31 * DAY;
  const round = await relay.runOnce();
  t.deepEqual(round.purged, [{ device: first!.device, id: first!.id }]);
  t.true(existsSync(w.station.store.objectPath(third!.sha256)));
  t.true(existsSync(w.station.store.objectPath(fourth!.sha256)));
  const refused = new Map(
    alerts.filter((a) => a.code === 'STORE_PURGE_REFUSED').map((a) => [a.id, a.message]),
  );
  t.deepEqual([...refused.keys()].sort(), [third!.id, fourth!.id].sort());
  t.regex(refused.get(third!.id)!, /no center receipt is held/);
  t.regex(refused.get(fourth!.id)!, /does not match/);
  // Said once, not every round; the objects still stay.
  await relay.runOnce();
  t.is(alerts.filter((a) => a.code === 'STORE_PURGE_REFUSED').length, 2);
  t.true(existsSync(w.station.store.objectPath(third!.sha256)));

  const expected = [
    `STORE_RELAY_UNPROVEN ${second!.id}`,
    `STORE_OBJECT_MISSING ${second!.id}`,
    `STORE_RELAY_UNPROVEN ${third!.id}`,
    `STORE_RECEIPT_INVALID ${fourth!.id}`,
  ].sort();
  const { code, report } = await verifyCli(w.station);
  t.is(code, 1);
  const found = (problems: unknown[]) =>
    (problems as { code: string; id: string }[]).map((p) => `${p.code} ${p.id}`).sort();
  t.deepEqual(found(report.problems), expected);
  // Without the center's key configured, a receipt must still be there and name the item.
  const { verifyStore } = await import('../../gateway/evidence-verify.ts');
  const keyless = await verifyStore(w.station.store, {
    role: 'station',
    receiptKey: w.station.receiptKeys.publicKey,
  });
  t.deepEqual(found(keyless.problems), expected);
});

test('without the device certificate nothing is relayed: the center could not check the signatures', async (t) => {
  const w = await world(t, [2_000]);
  const db = new Database(join(w.station.dir, 'evidence', 'index.sqlite'));
  db.prepare('UPDATE devices SET cert = NULL').run();
  db.close();
  const result = await w.relay().runOnce();
  t.deepEqual(result.relayed, []);
  t.true(result.failed.length >= 2, JSON.stringify(result.failed));
  t.true(result.failed.every((f) => f.code === 'RELAY_NO_CERTIFICATE'));
  t.is(w.center.store.list().length, 0);
  t.is(w.center.store.journalLines(w.device.id).length, 0);
});

test('an orphan (a sealed file found without its entry after a power cut) travels to the center, which checks it decrypts', async (t) => {
  const w = await world(t, [3_000]);
  const d = w.device;
  // A seal whose journal append never happened, and then the power cut took the RAM spool.
  const plaintext = randomBytes(5_000);
  const spoolPath = join(d.spoolDir, 'seg-7.ts');
  writeFileSync(spoolPath, plaintext);
  const failing = new Sealer({
    evidenceDir: d.evidenceDir,
    journal: { append: () => Promise.reject(new Error('power cut')), head: d.journal.head },
    centerPublicKey: testCenterKeys().publicKey,
  });
  await t.throwsAsync(failing.seal(spoolPath, sealMeta({ segment: 7 })));
  rmSync(spoolPath);
  // And a file that only looks like evidence: the center must refuse it.
  writeFileSync(join(d.evidenceDir, 'EV-junk_00000.ts.rse'), randomBytes(2_000));

  const sealer = new Sealer({
    evidenceDir: d.evidenceDir,
    journal: d.journal,
    centerPublicKey: testCenterKeys().publicKey,
  });
  const report = await recoverSpool(d.spoolDir, {
    sealer,
    journal: d.journal,
    officer: 'OF-0042',
    state: d.state,
  });
  t.is(report.orphans.length, 2);
  const queued = d.state.data.uploadQueue.filter((i) => i.kind === 'evidence-orphan');
  t.deepEqual(queued.map((i) => i.file).sort(), [...report.orphans].sort());
  const lines = readFileSync(d.journalPath, 'utf8').trimEnd().split('\n');
  for (const item of queued) {
    d.items.push(item);
    d.entries.set(item.file, JSON.parse(lines[item.seq]!) as JournalEntry);
  }

  await w.evidence.upload(d, w.station);
  for (const item of queued) {
    t.false(existsSync(join(d.evidenceDir, item.file)), 'receipted, so deleted on the device');
    t.is(w.station.store.get(d.id, item.file)!.kind, 'evidence-orphan');
  }
  const result = await w.relay({ maxAttempts: 1 }).runOnce();
  const orphan = queued.find((i) => i.file !== 'EV-junk_00000.ts.rse')!;
  t.true(result.relayed.some((r) => r.id === orphan.file));
  t.true(result.failed.some((f) => f.id === 'EV-junk_00000.ts.rse'));
  t.truthy(w.station.store.get(d.id, 'EV-junk_00000.ts.rse'), 'the station keeps what the center refused');
  t.is(w.center.store.get(d.id, 'EV-junk_00000.ts.rse'), null);
  t.true(w.center.alerts.some((a) => a.id === 'EV-junk_00000.ts.rse' && a.code.startsWith('EVIDENCE_')));
  // The center decrypted the orphan (the GCM tag checks) and recorded its plaintext's hash.
  const life = w.center.store.lifecycle(d.id, orphan.file)!;
  t.true(life.ingest!.ok);
  t.is(life.ingest!.plainSha256, createHash('sha256').update(plaintext).digest('hex'));
  const atCenter = await verifyCli(w.center);
  t.is(atCenter.code, 0, JSON.stringify(atCenter.report.problems));
  const atStation = await verifyCli(w.station);
  t.is(atStation.code, 0, JSON.stringify(atStation.report.problems));
});
