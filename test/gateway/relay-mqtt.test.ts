/**
 * Two real gateways on loopback, mutual TLS: a device uploads to its station over MQTT, the
 * station relays to the center (role center, center key) with its own gateway certificate.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import mqtt from 'mqtt';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { caPaths, revokeCertificate } from '../../gateway/ca.ts';
import { loadGatewayConfig } from '../../gateway/config.ts';
import type { RejectEvent } from '../../gateway/broker.ts';
import type { LogRecord } from '../../gateway/log.ts';
import { startGateway, type GatewayHandle } from '../../gateway/gateway.ts';
import { MqttUploadLink } from '../../protocol/upload-mqtt.ts';
import { renderFleetTable } from '../../cli/fleet-table.ts';
import { runRecorder } from '../helpers/cli.ts';
import {
  evidenceWorld,
  type DeviceRig,
  type EvidenceWorld,
  type GatewayRig,
} from '../helpers/evidence-rig.ts';
import { tlsOptions, waitFor } from '../helpers/mqtt.ts';

const logs: LogRecord[] = [];
const quiet = (r: LogRecord) => void logs.push(r);

async function startCenter(
  t: ExecutionContext,
  world: EvidenceWorld,
  center: GatewayRig,
  port = 0,
  extra: Record<string, unknown> = {},
) {
  const id = world.pki.issue('gateway', 'center');
  center.writeConfig({
    listen: { host: '127.0.0.1', port },
    tls: { ...world.pki.config().tls, cert: id.cert, key: id.key },
    ...extra,
  });
  const handle = await startGateway(loadGatewayConfig(center.configPath), { logSink: quiet });
  t.teardown(() => handle.close().catch(() => undefined));
  return handle;
}

async function startStation(
  t: ExecutionContext,
  world: EvidenceWorld,
  station: GatewayRig,
  center: GatewayRig,
  centerUrl: string,
  /** the CA of the center's certificate: default the station's own unit CA */
  centerCa?: string,
) {
  const tls = world.pki.config().tls; // the station's own gateway certificate
  station.writeConfig({
    upstream: {
      url: centerUrl,
      cert: tls.cert,
      key: tls.key,
      ca: centerCa ?? tls.ca,
      receiptKey: center.receiptPubPath,
    },
  });
  const handle = await startGateway(loadGatewayConfig(station.configPath), {
    logSink: quiet,
    relay: {
      // A minute idle: what goes to the center promptly goes because the gateway wakes the relay.
      relay: { replyTimeoutMs: 3000, backoffMinMs: 200, backoffMaxMs: 1000, idleMs: 60_000 },
      reconnectPeriodMs: 200,
    },
  });
  t.teardown(() => handle.close().catch(() => undefined));
  return handle;
}

/** The device's own upload over MQTT, with its certificate. */
async function uploadOverMqtt(
  t: ExecutionContext,
  station: GatewayHandle,
  rig: GatewayRig,
  device: DeviceRig,
  unit: string,
) {
  const client = await mqtt.connectAsync(station.url, {
    protocolVersion: 4,
    clientId: device.id,
    reconnectPeriod: 0,
    ...tlsOptions({ ...device.tls, serial: '', certPem: device.certPem }),
  });
  t.teardown(() => client.endAsync(true));
  const link = new MqttUploadLink({ client, unit, device: device.id });
  await link.start();
  const uploader = device.uploader({
    link,
    gatewayKey: rig.receiptKeys.publicKey,
    chunkBytes: 64 * 1024,
    replyTimeoutMs: 5000,
  });
  const result = await uploader.uploadAll();
  t.deepEqual(result.failed, []);
  await uploader.syncJournal();
  await link.stop();
}

async function verifyBoth(t: ExecutionContext, station: GatewayRig, center: GatewayRig) {
  const [s, c] = await Promise.all(
    [station, center].map((g) => runRecorder(['evidence', 'verify', '--config', g.configPath, '--json'])),
  );
  t.is(s!.code, 0, s!.stdout + s!.stderr);
  t.is(c!.code, 0, c!.stdout + c!.stderr);
  return {
    station: JSON.parse(s!.stdout) as { items: number },
    center: JSON.parse(c!.stdout) as { items: number },
  };
}

test('a recording travels from the recorder to the center over MQTT, every hash and signature checked', async (t) => {
  const world = evidenceWorld(t);
  const station = world.gateway('station', 'station');
  const center = world.gateway('center', 'center');
  const device = await world.device('HN-CS-0001');
  await device.seal(300_000);
  await device.seal(20_000);
  const centerHandle = await startCenter(t, world, center);
  const stationHandle = await startStation(t, world, station, center, centerHandle.url);
  await uploadOverMqtt(t, stationHandle, station, device, world.pki.unit);
  await waitFor(
    () =>
      station.store.list().length === 2 &&
      station.store.unrelayed().length === 0 &&
      station.store.relayedJournalHead(device.id)?.seq === station.store.journalHead(device.id)?.seq,
    30_000,
    'the relay to the center',
  );
  for (const item of center.store.list()) t.true(center.store.lifecycle(item.device, item.id)!.ingest!.ok);
  const reports = await verifyBoth(t, station, center);
  t.is(reports.station.items, 2);
  t.is(reports.center.items, 2);
  // New journal lines alone (no evidence) reach the center too, long before the relay's idle minute.
  await device.journal.append('event', { what: 'button', button: 'mark' });
  await uploadOverMqtt(t, stationHandle, station, device, world.pki.unit);
  const head = station.store.journalHead(device.id)!;
  await waitFor(
    () => center.store.journalHead(device.id)?.seq === head.seq,
    10_000,
    'the new journal lines at the center',
  );
  await waitFor(
    () => station.store.relayedJournalHead(device.id)?.seq === head.seq,
    5_000,
    'the journal receipt',
  );
});

test('over MQTT: the journal of a device with no evidence yet reaches the center, its certificate carried along', async (t) => {
  const world = evidenceWorld(t);
  const station = world.gateway('station', 'station');
  const center = world.gateway('center', 'center');
  const device = await world.device('HN-CS-0001');
  await device.journal.append('event', { what: 'button', button: 'mark' });
  const centerHandle = await startCenter(t, world, center);
  const stationHandle = await startStation(t, world, station, center, centerHandle.url);
  await uploadOverMqtt(t, stationHandle, station, device, world.pki.unit);
  const head = station.store.journalHead(device.id)!;
  // The center has never seen the device: the batch's certificate is all it can check the lines by.
  await waitFor(
    () => center.store.journalHead(device.id)?.seq === head.seq,
    10_000,
    'the journal at the center',
  );
  const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;
  t.is(fingerprint(center.store.knownDevice(device.id)!.certPem!), fingerprint(device.certPem));
  await waitFor(() => !!station.store.relayedJournalHead(device.id)?.receipt, 5_000, 'the journal receipt');
  t.is(stationHandle.status().relay!.lastError, null);
});

test('over MQTT: the center down, then up on the same port: the station relays when it is back', async (t) => {
  const world = evidenceWorld(t);
  const station = world.gateway('station', 'station');
  const center = world.gateway('center', 'center');
  const device = await world.device('HN-CS-0001');
  await device.seal(50_000);
  // Learn a free port, then leave it closed while the station starts and the device uploads.
  const first = await startCenter(t, world, center);
  const port = first.address.port;
  await first.close();
  const stationHandle = await startStation(t, world, station, center, `mqtts://127.0.0.1:${port}`);
  await uploadOverMqtt(t, stationHandle, station, device, world.pki.unit);
  await new Promise((r) => setTimeout(r, 1000));
  t.is(station.store.unrelayed().length, 1, 'kept while the center is away');
  t.is(center.store.list().length, 0);
  // The station's status says so, and the fleet table under its title.
  const away = stationHandle.status().relay!;
  t.like(away, { connected: false, pendingItems: 1, pendingJournals: 1, lastRelayedAt: null });
  t.true(away.pendingBytes > 50_000);
  t.is(away.oldestPending, station.store.list()[0]!.storedAt);
  const table = renderFleetTable(stationHandle.fleet(), Date.now(), stationHandle.status());
  t.regex(
    table,
    /^! gateway: relay to the center not connected: 1 item\(s\), 0\.0 MiB waiting since \d{4}-.*, 1 device journal\(s\) behind/m,
  );
  await startCenter(t, world, center, port);
  await waitFor(() => station.store.unrelayed().length === 0, 30_000, 'the relay after the center came back');
  await waitFor(
    () => stationHandle.status().relay!.lastRelayedAt !== null,
    5_000,
    'the status after the relay',
  );
  // The journal goes too (its batches carry the device certificate). A round that began while the
  // center was still away keeps its error until the next round, which finds nothing left to do.
  await waitFor(() => stationHandle.status().relay!.lastError === null, 30_000, 'a clean relay round');
  t.like(stationHandle.status().relay, {
    connected: true,
    pendingItems: 0,
    pendingBytes: 0,
    oldestPending: null,
    pendingJournals: 0,
    lastError: null,
  });
  t.notRegex(
    renderFleetTable(stationHandle.fleet(), Date.now(), stationHandle.status()),
    /relay to the center/,
  );
  await verifyBoth(t, station, center);
});

test.afterEach.always((t) => {
  if (!t.passed) for (const r of logs.filter((l) => l.level !== 'debug')) t.log(JSON.stringify(r));
});

test('a center admits the stations of several units: each relays its own devices; a revocation in one unit cuts off only its station', async (t) => {
  const a = evidenceWorld(t); // the center's own unit, HN-CS
  const b = evidenceWorld(t, 'HN-ZZ');
  const center = a.gateway('center', 'center');
  const bCa = caPaths(b.pki.caDir);
  const centerHandle = await startCenter(t, a, center, 0, {
    units: [{ unit: 'HN-ZZ', ca: bCa.cert, crl: bCa.crl }],
  });
  t.true(logs.some((r) => r.msg === 'gateway listening' && `${r.alsoAdmits as string[]}` === 'HN-ZZ'));
  const rejects: RejectEvent[] = [];
  centerHandle.events.on('reject', (r: RejectEvent) => rejects.push(r));
  const stations = [
    { world: a, rig: a.gateway('station', 'station'), device: await a.device('HN-CS-0001') },
    { world: b, rig: b.gateway('station', 'station'), device: await b.device('HN-ZZ-0001') },
  ];
  const aCa = caPaths(a.pki.caDir).cert;
  const handles: GatewayHandle[] = [];
  for (const s of stations) {
    await s.device.seal(40_000);
    await s.device.seal(10_000);
    const handle = await startStation(t, s.world, s.rig, center, centerHandle.url, aCa);
    handles.push(handle);
    await uploadOverMqtt(t, handle, s.rig, s.device, s.world.pki.unit);
  }
  const relayed = (s: (typeof stations)[number]) =>
    s.rig.store.list().length > 0 &&
    s.rig.store.unrelayed().length === 0 &&
    s.rig.store.relayedJournalHead(s.device.id)?.seq === s.rig.store.journalHead(s.device.id)?.seq;
  await waitFor(() => stations.every(relayed), 30_000, 'both stations relaying to the center');
  // Each item is indexed under its own unit, and verify passes everywhere.
  t.deepEqual(
    center.store
      .list()
      .map((i) => `${i.unit}/${i.device}`)
      .sort(),
    ['HN-CS/HN-CS-0001', 'HN-CS/HN-CS-0001', 'HN-ZZ/HN-ZZ-0001', 'HN-ZZ/HN-ZZ-0001'],
  );
  await verifyBoth(t, stations[0]!.rig, center);
  await verifyBoth(t, stations[1]!.rig, center);
  // The relayed devices are not the center's fleet: its own unit's managers see neither.
  t.deepEqual(centerHandle.fleet().devices, []);
  // `evidence list` at the center: a UNIT column, and --unit for one unit's items.
  const table = await runRecorder(['evidence', 'list', '--config', center.configPath]);
  t.regex(table.stdout, /^UNIT\s+DEVICE\s+ID/);
  t.regex(table.stdout, /^HN-ZZ\s+HN-ZZ-0001\s/m);
  const zz = await runRecorder([
    'evidence',
    'list',
    '--config',
    center.configPath,
    '--unit',
    'HN-ZZ',
    '--json',
  ]);
  t.is(zz.code, 0, zz.stderr);
  t.deepEqual(
    zz.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { unit: string; device: string }).device),
    ['HN-ZZ-0001', 'HN-ZZ-0001'],
  );

  // Both stations' certificates say id `station`: a client id held by HN-CS's is not taken over
  // by HN-ZZ's.
  const asStation = (w: EvidenceWorld) =>
    mqtt.connectAsync(centerHandle.url, {
      protocolVersion: 4,
      clientId: 'station:probe',
      reconnectPeriod: 0,
      cert: readFileSync(w.pki.config().tls.cert),
      key: readFileSync(w.pki.config().tls.key),
      ca: readFileSync(aCa),
    });
  const holder = await asStation(a);
  t.teardown(() => holder.endAsync(true));
  await t.throwsAsync(asStation(b));
  t.true(rejects.some((r) => r.detail === 'client id station:probe is held by a gateway of unit HN-CS'));
  t.true(holder.connected);
  await holder.endAsync();

  // Both units number their certificates alike, so the two stations hold the same serial; revoking
  // it in HN-ZZ cuts off HN-ZZ's station only, and HN-CS's goes on relaying.
  const serialOf = (w: EvidenceWorld) =>
    new X509Certificate(readFileSync(w.pki.config().tls.cert)).serialNumber;
  t.is(serialOf(a), serialOf(b));
  revokeCertificate(b.pki.caDir, serialOf(b));
  await waitFor(
    () => rejects.some((r) => r.reason === 'tls' && r.detail.includes('revoked while connected')),
    10_000,
    'the revoked station cut off',
  );
  await new Promise((r) => setTimeout(r, 500));
  t.is(rejects.filter((r) => r.detail.includes('revoked while connected')).length, 1);
  await stations[0]!.device.seal(5_000);
  await uploadOverMqtt(t, handles[0]!, stations[0]!.rig, stations[0]!.device, a.pki.unit);
  await waitFor(() => relayed(stations[0]!), 30_000, "HN-CS's station relaying after HN-ZZ's revocation");
  t.is(center.store.list({ device: 'HN-CS-0001' }).length, 3);
});
