/**
 * The device telemetry client against the real gateway: commands with replies (errors included),
 * status on change, the last will on an unclean drop, reconnect after a gateway restart, and no
 * publication the ACL would refuse.
 */
import test, { type ExecutionContext } from 'ava';
import type { MqttClient } from 'mqtt';
import {
  TelemetryClient,
  telemetryOptionsFromProfile,
  type TelemetryOptions,
} from '../../device/telemetry.ts';
import { parseProfile } from '../../protocol/schemas/profile.ts';
import { startGateway, type GatewayHandle } from '../../gateway/gateway.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import type { CommandResult } from '../../protocol/schemas/command.ts';
import { RecorderError } from '../../protocol/errors.ts';
import { deviceTopic } from '../../protocol/topics.ts';
import { connectAs, makeStatus, tlsOptions, waitFor } from '../helpers/mqtt.ts';
import { testCenterKeys } from '../helpers/media.ts';
import { testPki, type TestPki } from '../helpers/pki.ts';

const U = 'HN-CS';

async function setup(t: ExecutionContext, device: string, extra: Partial<TelemetryOptions> = {}) {
  const pki = testPki(t, U);
  const gw = await startGateway(pki.config({ fleet: { publishIntervalMs: 200 } }), { logSink: () => {} });
  // Registered at once: a failed connect below must not leave the gateway holding the worker open.
  t.teardown(() => gw.close());
  const dev = pki.issue('device', device);
  const status = { battery: 80 };
  const client = new TelemetryClient({
    url: gw.url,
    unit: U,
    device,
    ...tlsOptions(dev),
    getStatus: () =>
      makeStatus(device, {
        battery: { percent: status.battery, charging: false, minutesLeft: status.battery * 3 },
      }),
    changeCheckMs: 50,
    backoffMinMs: 100,
    backoffMaxMs: 400,
    ...extra,
  });
  let manager: MqttClient | null = null;
  t.teardown(async () => {
    await client.stop();
    await manager?.endAsync();
  });
  manager = await connectAs(gw.url, pki.issue('manager', 'm1'), 'm1:test');
  return { pki, gw, client, manager, status };
}

function collect(manager: MqttClient, topic: string): string[] {
  const got: string[] = [];
  manager.on('message', (tp, payload) => {
    if (tp === topic) got.push(payload.toString());
  });
  return got;
}

test('commands get replies with their id, errors included; an invalid command never reaches the device', async (t) => {
  const D = 'HN-CS-0010';
  const located: number[] = [];
  const { gw, client, manager } = await setup(t, D, {
    handlers: {
      locate: (cmd) => {
        located.push(cmd.args?.seconds ?? 10);
        return { buzzing: true };
      },
      'sync-time': () => {
        throw new RecorderError('CLI_USAGE', 'no reference time');
      },
    },
  });
  client.start();
  await new Promise((r) => client.once('connect', r));
  const results = collect(manager, deviceTopic('cmdResult', U, D));
  await manager.subscribeAsync(deviceTopic('cmdResult', U, D), { qos: 1 });
  const send = (body: object) =>
    manager.publishAsync(deviceTopic('cmd', U, D), JSON.stringify(body), { qos: 1 });
  const time = new Date().toISOString();
  await send({ id: 'c1', name: 'locate', time, args: { seconds: 5 } });
  await send({ id: 'c2', name: 'sync-time', time });
  await send({ id: 'c3', name: 'report-now', time });
  await send({ id: 'c4', name: 'self-destruct', time }); // the gateway drops it: not in the schema
  await waitFor(() => results.length >= 3, 10_000, 'three replies');
  await new Promise((r) => setTimeout(r, 300));
  const byId = Object.fromEntries(
    results.map((r) => [(JSON.parse(r) as CommandResult).id, JSON.parse(r) as CommandResult]),
  );
  t.deepEqual(located, [5]);
  t.like(byId.c1, { name: 'locate', ok: true, result: { buzzing: true } });
  t.like(byId.c2, { name: 'sync-time', ok: false, error: { code: 'CLI_USAGE' } });
  t.like(byId.c3, { name: 'report-now', ok: true });
  t.is(byId.c4, undefined);
  t.is(gw.counters().schema, 1);
});

test('a changed status is published at once and retained; the gateway sees it in the fleet', async (t) => {
  const D = 'HN-CS-0011';
  const { gw, client, manager, status } = await setup(t, D);
  client.start();
  await new Promise((r) => client.once('connect', r));
  const statuses = collect(manager, deviceTopic('status', U, D));
  await manager.subscribeAsync(deviceTopic('status', U, D), { qos: 1 });
  await waitFor(() => statuses.length >= 1, 5000, 'the retained status');
  status.battery = 12;
  await waitFor(() => statuses.some((s) => JSON.parse(s).battery.percent === 12), 5000, 'the new status');
  await waitFor(() => gw.fleet().devices[0]?.batteryPercent === 12, 5000, 'the fleet to follow');
  t.deepEqual(gw.fleet().devices[0]!.alerts, ['battery-low']);
});

test('an unclean drop publishes the last will; the client reconnects after the gateway restarts', async (t) => {
  const D = 'HN-CS-0012';
  const pki: TestPki = testPki(t, U);
  const config = pki.config({ fleet: { publishIntervalMs: 200 } });
  let gw: GatewayHandle = await startGateway(config, { logSink: () => {} });
  const port = gw.address.port;
  const dev = pki.issue('device', D);
  const connects: number[] = [];
  const client = new TelemetryClient({
    url: gw.url,
    unit: U,
    device: D,
    ...tlsOptions(dev),
    getStatus: () => makeStatus(D),
    backoffMinMs: 100,
    backoffMaxMs: 300,
    keepaliveSeconds: 2,
  });
  let watcher: MqttClient | null = null;
  // Registered at once (gw is read at teardown: the restarted gateway), so a failed wait ends cleanly.
  t.teardown(async () => {
    await client.stop();
    await watcher?.endAsync();
    await gw.close();
  });
  client.on('connect', () => connects.push(Date.now()));
  client.start();
  await waitFor(() => connects.length === 1, 30_000, 'the first connection');
  await gw.close();
  gw = await startGateway({ ...config, listen: { host: '127.0.0.1', port } }, { logSink: () => {} });
  await waitFor(() => connects.length === 2, 30_000, 'the reconnection');
  await waitFor(() => gw.fleet().devices[0]?.online === true, 15_000, 'the device to be online again');
  // An unclean drop: the TLS connection is cut without a DISCONNECT, which fires the last will.
  watcher = await connectAs(gw.url, pki.issue('manager', 'm1'), 'm1:w');
  const availability = collect(watcher, deviceTopic('availability', U, D));
  await watcher.subscribeAsync(deviceTopic('availability', U, D), { qos: 1 });
  await waitFor(() => availability.at(-1) === 'online', 15_000, 'online');
  const mark = availability.length;
  const socket = (client as unknown as { client: { stream: { destroy(): void } } }).client.stream;
  socket.destroy(); // the client has not said offline: only the will can
  await waitFor(() => availability.slice(mark).includes('offline'), 20_000, 'the last will');
  // ...and the client comes back by itself.
  await waitFor(() => connects.length === 3, 30_000, 'the second reconnection');
  t.pass();
});

test('the client refuses to send what the ACL or the schema would refuse, before sending it', async (t) => {
  const D = 'HN-CS-0013';
  const { gw, client } = await setup(t, D);
  client.start();
  await new Promise((r) => client.once('connect', r));
  const before = gw.counters();
  const error = await t.throwsAsync(
    client.publishEvent({ device: D, time: 'yesterday', seq: 1, kind: 'mark', body: {} }),
  );
  t.true(isRecorderError(error, 'MQTT_PAYLOAD_INVALID'));
  await client.publishEvent({
    device: D,
    time: new Date().toISOString(),
    seq: 2,
    kind: 'mark',
    body: { n: 1 },
  });
  t.deepEqual(gw.counters(), before);
  const other = new TelemetryClient({
    url: gw.url,
    unit: U,
    device: 'HN-CS/../x',
    cert: '',
    key: '',
    ca: '',
    getStatus: () => makeStatus('HN-CS-0013'),
  });
  const refused = t.throws(() => other.start());
  t.true(isRecorderError(refused, 'MQTT_TOPIC_REFUSED'));
});

test("a profile's gateway section is all the client needs; a bad URL fails profile validation", async (t) => {
  const pki = testPki(t, U);
  const gw = await startGateway(pki.config(), { logSink: () => {} });
  t.teardown(() => gw.close());
  const D = 'HN-CS-0014';
  const dev = pki.issue('device', D);
  const doc = {
    format: 'recorder-profile/1',
    version: 1,
    unit: U,
    device: D,
    officers: ['O-1'],
    capture: {},
    storage: { evidenceDir: '/tmp/e', spoolDir: '/tmp/s' },
    centerPublicKey: testCenterKeys().publicKey.export({ type: 'spki', format: 'pem' }) as string,
    gateway: { url: gw.url, cert: dev.cert, key: dev.key, ca: dev.ca },
  };
  const profile = parseProfile(doc);
  t.is(profile.gateway!.statusIntervalSeconds, 60);
  const options = telemetryOptionsFromProfile(profile, () => makeStatus(D))!;
  t.is(options.statusIntervalMs, 60_000);
  const client = new TelemetryClient(options);
  t.teardown(() => client.stop());
  client.start();
  await new Promise((r) => client.once('connect', r));
  await waitFor(() => gw.fleet().devices.some((d) => d.device === D), 5000, 'the device in the fleet');
  t.is(
    telemetryOptionsFromProfile({ ...profile, gateway: undefined }, () => makeStatus(D)),
    undefined,
  );
  const error = t.throws(() =>
    parseProfile({ ...doc, gateway: { ...doc.gateway, url: 'mqtt://open-internet:1883' } }),
  );
  t.true(isRecorderError(error, 'PROFILE_INVALID'));
  t.regex(error!.message, /\/gateway\/url/);
});
