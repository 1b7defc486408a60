/**
 * Uploads over the real gateway (issue 6 items 1–2): mutual-TLS MQTT on loopback, the broker's ACL,
 * the upload service, the evidence store on disk. The sending side is the device's Uploader on an
 * MqttUploadLink over an mqtt.js client.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { JournalWriter } from '../../device/journal-writer.ts';
import { Uploader, type PendingUpload } from '../../device/uploader.ts';
import { startGateway, type GatewayHandle } from '../../gateway/gateway.ts';
import type { UploadAlert } from '../../gateway/upload-receiver.ts';
import type { JournalEntry } from '../../protocol/journal-entry.ts';
import type { Fleet, GatewayStatus } from '../../protocol/schemas/fleet.ts';
import { deviceTopic, gatewayTopic } from '../../protocol/topics.ts';
import { MqttUploadLink } from '../../protocol/upload-mqtt.ts';
import { testPki, type TestIdentity, type TestPki } from '../helpers/pki.ts';
import { closedBy, connectAs, tlsOptions, waitFor } from '../helpers/mqtt.ts';
import { fakeSegments, queueOptions } from '../helpers/sealed-device.ts';
import { tempDir } from '../helpers/temp.ts';

const UNIT = 'HN-CS';

interface Device {
  id: string;
  dir: string;
  evidenceDir: string;
  journalPath: string;
  items: PendingUpload[];
  entries: Map<string, JournalEntry>;
  journal: JournalWriter;
  client: MqttClient;
  link: MqttUploadLink;
  uploader: Uploader;
}

async function startStation(t: ExecutionContext, pki: TestPki, overrides: Record<string, unknown> = {}) {
  const gw = await startGateway(pki.config({ fleet: { publishIntervalMs: 200 }, ...overrides }), {
    logSink: () => {},
  });
  t.teardown(() => gw.close());
  return gw;
}

/** A device with its own evidence key bound into its certificate, `sizes` sealed items, connected. */
async function device(
  t: ExecutionContext,
  pki: TestPki,
  gw: GatewayHandle,
  id: string,
  sizes: number[],
  options: { signer?: KeyObject; chunkBytes?: number; reconnect?: boolean } = {},
): Promise<Device> {
  const keys = generateKeyPairSync('ed25519');
  const who = pki.issue('device', id, {
    evidencePublicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }) as string,
  });
  const dir = tempDir(t);
  const evidenceDir = join(dir, 'evidence');
  mkdirSync(evidenceDir);
  const journalPath = join(dir, 'journal.jsonl');
  const journal = await JournalWriter.open({
    path: journalPath,
    device: id,
    privateKey: options.signer ?? keys.privateKey,
  });
  t.teardown(() => journal.close());
  const { items, entries } = await fakeSegments(journal, evidenceDir, sizes);
  const client = options.reconnect ? await reconnecting(gw.url, who, id) : await connectAs(gw.url, who, id);
  t.teardown(() => client.end(true));
  // Data chunks written directly on the connection, as the recorder sends them (protocol/upload-mqtt.ts).
  const link = new MqttUploadLink({ client, direct: client, unit: UNIT, device: id });
  await link.start();
  // mqtt.js does not resubscribe a clean session on its own for us to rely on: do it on reconnect.
  client.on('connect', () => void link.start().catch(() => undefined));
  const uploader = new Uploader({
    link,
    device: id,
    evidenceDir,
    gatewayKey: createPublicKey(readFileSync(pki.receiptKey.pub)),
    ...queueOptions({ items, entries }),
    journal,
    journalPath,
    chunkBytes: options.chunkBytes ?? 64 * 1024,
    window: 8,
    replyTimeoutMs: 2000,
    maxAttempts: 10,
  });
  return { id, dir, evidenceDir, journalPath, items, entries, journal, client, link, uploader };
}

/** A client that reconnects by itself (connectAs is one-shot). */
async function reconnecting(url: string, who: TestIdentity, id: string): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    protocolVersion: 4,
    clientId: id,
    reconnectPeriod: 100,
    connectTimeout: 10_000,
    ...tlsOptions(who),
  });
  client.on('error', () => undefined);
  await new Promise((resolve) => client.once('connect', resolve));
  return client;
}

function kinds(d: Device): string[] {
  return readFileSync(d.journalPath, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).kind);
}

test('items travel over TLS MQTT: stored read-only with their hash, indexed, receipted, deleted on the device', async (t) => {
  const pki = testPki(t);
  const gw = await startStation(t, pki);
  // A relay-role watcher of the whole unit sees none of the upload traffic (nobody reads upload/data).
  const relay = await connectAs(gw.url, pki.issue('gateway', 'relay'), 'relay');
  t.teardown(() => relay.end(true));
  const seenByRelay: string[] = [];
  relay.on('message', (topic) => seenByRelay.push(topic));
  await relay.subscribeAsync(`rec/v1/${UNIT}/#`, { qos: 1 });

  const d = await device(t, pki, gw, 'HN-CS-0001', [300_000, 10, 0, 70_000]);
  const head = await d.uploader.syncJournal();
  t.is(head?.seq, 3);
  const result = await d.uploader.uploadAll();
  t.deepEqual(result.failed, []);
  t.is(result.receipted.length, 4);
  t.deepEqual(readdirSync(d.evidenceDir), []);
  t.deepEqual(d.items, []);
  t.is(kinds(d).filter((k) => k === 'upload-receipt').length, 4);

  const stored = gw.uploads.store.list({ device: d.id });
  t.is(stored.length, 4);
  for (const item of stored) {
    t.is(await gw.uploads.store.checkObject(item), null, item.id);
    const path = gw.uploads.store.objectPath(item.sha256);
    t.is(statSync(path).mode & 0o222, 0, `${item.id} is read-only`);
    t.is(createHash('sha256').update(readFileSync(path)).digest('hex'), item.sha256);
  }
  // The station's copy of the journal (synced again after the receipts) equals the device's.
  await d.uploader.syncJournal();
  t.deepEqual(gw.uploads.store.journalLines(d.id), readFileSync(d.journalPath, 'utf8').trim().split('\n'));

  t.false(
    seenByRelay.some((topic) => /\/upload\/(data|offer|done|journal$)/.test(topic)),
    seenByRelay.join(' '),
  );
  t.like(gw.uploads.counters, { offers: 4, stored: 4, refused: 0, alerts: 0 });
  t.true(gw.uploads.counters.bytes >= 370_010);

  // Re-offering a receipted item returns the same receipt; nothing is stored twice.
  const again = await device(t, pki, gw, 'HN-CS-0002', [5]);
  await again.uploader.uploadAll();
  t.is(gw.uploads.store.list().length, 5);

  const watcher = await connectAs(gw.url, pki.issue('manager', 'm1'), 'm1');
  t.teardown(() => watcher.end(true));
  const statuses: GatewayStatus[] = [];
  watcher.on('message', (_topic, payload) => statuses.push(JSON.parse(payload.toString())));
  await watcher.subscribeAsync(gatewayTopic('gatewayStatus', UNIT), { qos: 0 });
  await waitFor(() => statuses.length > 0, 5000, 'gateway status');
  t.truthy(statuses[0]!.uploads);
});

test('connection cuts mid-upload (seeded) resume: nothing lost, nothing stored twice', async (t) => {
  const pki = testPki(t);
  const gw = await startStation(t, pki);
  const d = await device(t, pki, gw, 'HN-CS-0003', [900_000, 500_000, 300_000], {
    reconnect: true,
    chunkBytes: 32 * 1024,
  });
  let seed = 4242;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let cuts = 0;
  let chunks = 0;
  let cutAt = 3 + Math.floor(random() * 10);
  // The device's socket is destroyed after a seeded number of chunks, four times.
  const original = d.link.sendChunk.bind(d.link);
  d.link.sendChunk = async (id, offset, data) => {
    if (++chunks === cutAt && cuts < 4) {
      cuts++;
      chunks = 0;
      cutAt = 3 + Math.floor(random() * 10);
      (d.client.stream as unknown as { destroy(): void }).destroy();
    }
    return original(id, offset, data);
  };
  for (let round = 0; round < 30 && d.items.length > 0; round++) {
    await waitFor(() => d.client.connected, 10_000, 'reconnect');
    await d.uploader.uploadAll();
  }
  t.is(cuts, 4);
  t.deepEqual(d.items, []);
  t.deepEqual(readdirSync(d.evidenceDir), []);
  const stored = gw.uploads.store.list({ device: d.id });
  t.is(stored.length, 3);
  for (const item of stored) t.is(await gw.uploads.store.checkObject(item), null);
  t.deepEqual(readdirSync(join(gw.uploads.store.root, 'incoming')), []);
  t.is(kinds(d).filter((k) => k === 'upload-receipt').length, 3);
});

test('a forged offer is refused and raises an upload-refused alert on the fleet topic', async (t) => {
  const pki = testPki(t);
  const gw = await startStation(t, pki);
  const manager = await connectAs(gw.url, pki.issue('manager', 'm1'), 'm1');
  t.teardown(() => manager.end(true));
  let fleet: Fleet | undefined;
  manager.on('message', (_topic, payload) => (fleet = JSON.parse(payload.toString())));
  await manager.subscribeAsync(gatewayTopic('fleet', UNIT), { qos: 0 });
  const alerts: UploadAlert[] = [];
  gw.events.on('upload-alert', (a: UploadAlert) => alerts.push(a));

  // Device A's journal is signed by another key than the one its certificate binds.
  const d = await device(t, pki, gw, 'HN-CS-0004', [1000], {
    signer: generateKeyPairSync('ed25519').privateKey,
  });
  const result = await d.uploader.uploadAll();
  t.is(result.failed.length, 1);
  t.regex(result.failed[0]!.message, /UPLOAD_FORGED/);
  t.true(existsSync(join(d.evidenceDir, 'E1-0.ts.enc')));
  t.is(gw.uploads.store.list().length, 0);
  t.true(alerts.some((a) => a.code === 'UPLOAD_FORGED' && a.device === d.id));
  await waitFor(
    () => !!fleet?.devices.find((x) => x.device === d.id)?.alerts.includes('upload-refused'),
    5000,
    'upload-refused on the fleet topic',
  );
  t.pass();
});

test('nobody but the gateway publishes upload replies; managers read none of the upload topics', async (t) => {
  const pki = testPki(t);
  const gw = await startStation(t, pki);
  const fake = JSON.stringify({ id: 'x', status: 'have', offset: 0 });
  for (const [role, id] of [
    ['device', 'HN-CS-0005'],
    ['manager', 'm2'],
    ['technician', 't2'],
    ['gateway', 'relay2'],
  ] as const) {
    const c = await connectAs(gw.url, pki.issue(role, id), id);
    t.teardown(() => c.end(true));
    if (role === 'manager') {
      for (const f of [
        deviceTopic('uploadReceipt', UNIT, 'HN-CS-0005'),
        `rec/v1/${UNIT}/+/upload/data/+/+`,
      ]) {
        // mqtt.js turns the 0x80 return code into an error.
        await t.throwsAsync(c.subscribeAsync(f, { qos: 1 }), undefined, f);
      }
    }
    c.publish(deviceTopic('uploadReceipt', UNIT, 'HN-CS-0005'), fake, { qos: 0 });
    await closedBy(c, 5000);
  }
  t.true(gw.counters()['acl-publish'] >= 4);
});

test('station disk full: the device keeps its copy and a station-storage alert is raised', async (t) => {
  const dir = tempDir(t);
  const small = join(dir, 'station-small');
  mkdirSync(small);
  // A real, small filesystem (root can mount tmpfs; this test needs it).
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small]);
  t.teardown(() => execFileSync('umount', ['-l', small]));
  const pki = testPki(t);
  const gw = await startStation(t, pki, { evidence: { dir: small, receiptKey: pki.receiptKey.key } });
  const d = await device(t, pki, gw, 'HN-CS-0006', [600_000]);
  const result = await d.uploader.uploadAll();
  t.is(result.failed.length, 1);
  t.regex(result.failed[0]!.message, /STORAGE_FULL/);
  t.true(existsSync(join(d.evidenceDir, 'E1-0.ts.enc')));
  t.is(gw.uploads.store.list().length, 0);
  await waitFor(
    () =>
      !!gw
        .fleet()
        .devices.find((x) => x.device === d.id)
        ?.alerts.includes('station-storage'),
    5000,
    'station-storage alert',
  );
  t.pass();
});

test('a device gone mid-upload leaves no incoming file open; the bytes stay for its re-offer', async (t) => {
  const pki = testPki(t);
  const gw = await startStation(t, pki);
  const d = await device(t, pki, gw, 'HN-CS-0009', [2_000_000], { chunkBytes: 64 * 1024 });
  const item = d.items[0]!;
  const incoming = gw.uploads.store.incomingPath(d.id, item.file);
  const openOnIncoming = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === incoming;
      } catch {
        return false; // closed meanwhile
      }
    }).length;
  // After ten chunks the recorder's connection drops, and it never comes back.
  let chunks = 0;
  const original = d.link.sendChunk.bind(d.link);
  d.link.sendChunk = async (id, offset, data) => {
    if (++chunks === 10) {
      await waitFor(() => openOnIncoming() === 1, 5_000, 'the incoming file open while the item travels');
      d.client.end(true);
    }
    return original(id, offset, data);
  };
  await d.uploader.uploadAll().catch(() => undefined);
  await waitFor(() => openOnIncoming() === 0, 5_000, 'the incoming file closed once the device is gone');
  t.true(statSync(incoming).size >= 9 * 64 * 1024, 'the bytes written stay for a re-offer');
  t.is(gw.uploads.store.list().length, 0);
});
