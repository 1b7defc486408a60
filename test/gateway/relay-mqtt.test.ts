/**
 * Two real gateways on loopback, mutual TLS: a device uploads to its station over MQTT, the
 * station relays to the center (role center, center key) with its own gateway certificate.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import mqtt from 'mqtt';
import { loadGatewayConfig } from '../../gateway/config.ts';
import type { LogRecord } from '../../gateway/log.ts';
import { startGateway, type GatewayHandle } from '../../gateway/gateway.ts';
import { MqttUploadLink } from '../../protocol/upload-mqtt.ts';
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

async function startCenter(t: ExecutionContext, world: EvidenceWorld, center: GatewayRig, port = 0) {
  const id = world.pki.issue('gateway', 'center');
  center.writeConfig({
    listen: { host: '127.0.0.1', port },
    tls: { ...world.pki.config().tls, cert: id.cert, key: id.key },
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
) {
  const tls = world.pki.config().tls; // the station's own gateway certificate
  station.writeConfig({
    upstream: { url: centerUrl, cert: tls.cert, key: tls.key, ca: tls.ca, receiptKey: center.receiptPubPath },
  });
  const handle = await startGateway(loadGatewayConfig(station.configPath), {
    logSink: quiet,
    relay: {
      relay: { replyTimeoutMs: 3000, backoffMinMs: 200, backoffMaxMs: 1000, idleMs: 300 },
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
  await startCenter(t, world, center, port);
  await waitFor(() => station.store.unrelayed().length === 0, 30_000, 'the relay after the center came back');
  await verifyBoth(t, station, center);
});

test.afterEach.always((t) => {
  if (!t.passed) for (const r of logs.filter((l) => l.level !== 'debug')) t.log(JSON.stringify(r));
});
