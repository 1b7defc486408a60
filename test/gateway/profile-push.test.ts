/**
 * Profiles over the network (issue 7 item 4) against the real gateway on 127.0.0.1 with mutual TLS:
 * the device side is the real TelemetryClient + ProfileStore + JournalWriter in this process, the
 * technician side the real `recorder profile push` / `recorder device assign` in a child process.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { JournalWriter } from '../../device/journal-writer.ts';
import { loadOrCreateSigningKey } from '../../device/keys.ts';
import { createProfileReceiver } from '../../device/profile-receiver.ts';
import { ProfileStore } from '../../device/profile-store.ts';
import { TelemetryClient, type ProfileOutcome } from '../../device/telemetry.ts';
import { caPaths } from '../../gateway/ca.ts';
import type { GatewayConfig } from '../../gateway/config.ts';
import { startGateway, type GatewayHandle } from '../../gateway/gateway.ts';
import type { RejectEvent } from '../../gateway/broker.ts';
import { profileResultId } from '../../protocol/profile-push.ts';
import type { CommandResult } from '../../protocol/schemas/command.ts';
import type { Status } from '../../protocol/schemas/status.ts';
import { encodeSignedProfile, signProfile } from '../../protocol/signed-profile.ts';
import { deviceTopic } from '../../protocol/topics.ts';
import { runRecorder } from '../helpers/cli.ts';
import { closedBy, connectAs, makeStatus, tlsOptions, waitFor } from '../helpers/mqtt.ts';
import { testPki, type TestPki } from '../helpers/pki.ts';
import { tempDir } from '../helpers/temp.ts';
import { sampleProfile } from '../helpers/unit-ca.ts';

const U = 'HN-CS';
const D = 'HN-CS-0001';

interface Station {
  pki: TestPki;
  config: GatewayConfig;
  /** the configuration file `recorder profile push --gateway` reads (the running gateway's port) */
  configFile: string;
  gw: GatewayHandle;
  rejects: RejectEvent[];
  restart(): Promise<void>;
  sign(device: string, version: number, officer?: string): Buffer;
}

async function station(t: ExecutionContext): Promise<Station> {
  const pki = testPki(t, U);
  const config = pki.config({ profilesDir: join(pki.dir, 'profiles'), fleet: { publishIntervalMs: 200 } });
  const rejects: RejectEvent[] = [];
  const start = async (port: number) => {
    const gw = await startGateway({ ...config, listen: { host: '127.0.0.1', port } }, { logSink: () => {} });
    gw.events.on('reject', (e: RejectEvent) => rejects.push(e));
    return gw;
  };
  const gw = await start(0);
  const configFile = join(pki.dir, 'gateway.json');
  writeFileSync(
    configFile,
    JSON.stringify({ ...config, listen: { host: '127.0.0.1', port: gw.address.port } }),
  );
  const signer = {
    keyPem: readFileSync(caPaths(pki.caDir).profileSignerKey, 'utf8'),
    certPem: readFileSync(caPaths(pki.caDir).profileSignerCert, 'utf8'),
  };
  const s: Station = {
    pki,
    config,
    configFile,
    gw,
    rejects,
    restart: async () => {
      const port = s.gw.address.port;
      await s.gw.close();
      s.gw = await start(port);
    },
    sign: (device, version, officer = 'O-1001') =>
      encodeSignedProfile(signProfile(sampleProfile(device, version, officer), signer)),
  };
  t.teardown(() => s.gw.close());
  return s;
}

interface SimDevice {
  client: TelemetryClient;
  store: ProfileStore;
  /** the signed profile file in force */
  path: string;
  outcomes: ProfileOutcome[];
  connects: number;
  entries(): { kind: string; body: Record<string, unknown> }[];
  start(): Promise<void>;
}

/** A provisioned device: unit CA pinned, `initial` applied as if flashed over the service port. */
async function simDevice(
  t: ExecutionContext,
  s: Station,
  device: string,
  initial: Buffer,
): Promise<SimDevice> {
  const dir = tempDir(t, 'recorder-device-');
  const key = loadOrCreateSigningKey(join(dir, 'sign.key.pem'), join(dir, 'sign.pub.pem'));
  const journalPath = join(dir, 'journal.jsonl');
  const journal = await JournalWriter.open({ path: journalPath, device, privateKey: key.privateKey });
  const path = join(dir, 'profile.signed.json');
  const store = new ProfileStore({
    path,
    device,
    caCertPem: readFileSync(caPaths(s.pki.caDir).cert, 'utf8'),
    journal,
  });
  t.true((await store.apply(initial, 'service-port')).ok);
  const identity = s.pki.issue('device', device);
  const client = new TelemetryClient({
    url: s.gw.url,
    unit: U,
    device,
    ...tlsOptions(identity),
    getStatus: () => {
      const p = store.current()!;
      return makeStatus(device, {
        officer: p.officers[0]!,
        profile: { id: `${U}/${device}`, version: p.version },
      });
    },
    changeCheckMs: 50,
    backoffMinMs: 100,
    backoffMaxMs: 400,
    onProfile: createProfileReceiver({ store, path }),
  });
  const sim: SimDevice = {
    client,
    store,
    path,
    outcomes: [],
    connects: 0,
    entries: () =>
      readFileSync(journalPath, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { kind: string; body: Record<string, unknown> }),
    start: async () => {
      client.start();
      await waitFor(() => sim.connects > 0, 10_000, 'the device to connect');
    },
  };
  client.on('profile', (o: ProfileOutcome) => sim.outcomes.push(o));
  client.on('connect', () => sim.connects++);
  t.teardown(async () => {
    await client.stop();
    await journal.close();
  });
  return sim;
}

async function watcher(t: ExecutionContext, s: Station, id: string): Promise<MqttClient> {
  const client = await connectAs(s.gw.url, s.pki.issue('manager', id), `${id}:test`);
  t.teardown(() => client.endAsync());
  return client;
}

function results(client: MqttClient, device: string): CommandResult[] {
  const got: CommandResult[] = [];
  client.on('message', (topic, payload) => {
    if (topic === deviceTopic('cmdResult', U, device))
      got.push(JSON.parse(payload.toString()) as CommandResult);
  });
  return got;
}

/** The retained profile a fresh subscriber gets on `device`'s topic (undefined when none). */
async function retainedProfile(s: Station, device: string): Promise<Buffer | undefined> {
  const client = await connectAs(s.gw.url, s.pki.issue('technician', 'look'), `look:${Date.now()}`);
  let got: Buffer | undefined;
  client.on('message', (_topic, payload) => (got = payload));
  await client.subscribeAsync(deviceTopic('profile', U, device), { qos: 1 });
  await new Promise((r) => setTimeout(r, 300));
  await client.endAsync();
  return got;
}

/** Every way a profile must be refused, as the bytes that would arrive (issue 7 item 4 tests). */
function badProfiles(t: ExecutionContext, s: Station) {
  const other = testPki(tempDir(t, 'recorder-other-unit-'), 'HN-XX');
  const foreign = encodeSignedProfile(
    signProfile(sampleProfile(D, 9), {
      keyPem: readFileSync(caPaths(other.caDir).profileSignerKey, 'utf8'),
      certPem: readFileSync(caPaths(other.caDir).profileSignerCert, 'utf8'),
    }),
  );
  const good = JSON.parse(s.sign(D, 9).toString()) as { signature: unknown };
  return [
    {
      what: 'unsigned',
      bytes: Buffer.from(JSON.stringify({ profile: sampleProfile(D, 9) })),
      code: 'PROFILE_UNSIGNED',
    },
    { what: 'signed by another unit', bytes: foreign, code: 'PROFILE_FOREIGN' },
    { what: 'for another device', bytes: s.sign('HN-CS-0002', 9), code: 'PROFILE_WRONG_DEVICE' },
    { what: 'older than the one in force', bytes: s.sign(D, 1), code: 'PROFILE_ROLLBACK' },
    {
      what: 'malformed',
      bytes: Buffer.from('{"profile":{"device":"HN-CS-0001","version":9'),
      code: 'PROFILE_INVALID',
    },
    {
      what: 'too large',
      bytes: Buffer.from(
        JSON.stringify({
          profile: { ...sampleProfile(D, 9), pad: 'x'.repeat(70_000) },
          signature: good.signature,
        }),
      ),
      code: 'PROFILE_TOO_LARGE',
    },
  ] as const;
}

test('profile push: the device applies it, journals it, answers on cmd/result and shows it in its status; a re-delivery is not journaled again', async (t) => {
  const s = await station(t);
  const dev = await simDevice(t, s, D, s.sign(D, 1));
  const manager = await watcher(t, s, 'm1');
  const statuses: Status[] = [];
  manager.on('message', (topic, payload) => {
    if (topic === deviceTopic('status', U, D)) statuses.push(JSON.parse(payload.toString()) as Status);
  });
  await manager.subscribeAsync(deviceTopic('status', U, D), { qos: 1 });
  await dev.start();

  const file = join(s.pki.dir, 'v2.signed.json');
  const v2 = s.sign(D, 2, 'O-2002');
  writeFileSync(file, v2);
  const push = await runRecorder(['profile', 'push', file, '--gateway', s.configFile, '--wait', '20s']);
  t.is(push.code, 0, push.stderr + push.stdout);
  t.regex(push.stdout, /HN-CS-0001: profile version 2 applied, officer O-2002/);

  t.is(dev.store.currentVersion, 2);
  const accepted = dev.entries().filter((e) => e.kind === 'profile-accepted');
  t.is(accepted.length, 2);
  t.like(accepted[1]!.body, { source: 'mqtt', version: 2, replaced: 1, officers: ['O-2002'] });
  await waitFor(
    () => statuses.some((st) => st.profile.version === 2 && st.officer === 'O-2002'),
    5000,
    'the status with version 2 and officer O-2002',
  );
  t.deepEqual(readFileSync(join(s.config.profilesDir!, `${D}.signed.json`)), v2);

  // Every reconnect delivers the retained profile again: answered `in-force`, not journaled.
  const journaled = dev.entries().length;
  const before = dev.outcomes.length;
  (dev.client as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy();
  await waitFor(() => dev.connects === 2, 10_000, 'the reconnection');
  await waitFor(() => dev.outcomes.length > before, 5000, 'the retained profile again');
  t.like(dev.outcomes.at(-1), { ok: true, result: { outcome: 'in-force', version: 2 } });
  t.is(dev.entries().length, journaled);
});

test('refusals over MQTT: unsigned, another unit, another device, older, malformed, too large — each journaled with its reason and answered; the last good profile stays', async (t) => {
  const s = await station(t);
  const dev = await simDevice(t, s, D, s.sign(D, 2, 'O-2002'));
  const manager = await watcher(t, s, 'm1');
  const got = results(manager, D);
  await manager.subscribeAsync(deviceTopic('cmdResult', U, D), { qos: 1 });
  await dev.start();
  const inForce = readFileSync(dev.path);
  for (const bad of badProfiles(t, s)) {
    // Published by the broker itself: what a broker that checks nothing (mosquitto) would deliver.
    await s.gw.broker.publishRetained(deviceTopic('profile', U, D), bad.bytes, 1);
    const id = profileResultId(bad.bytes);
    await waitFor(() => got.some((r) => r.id === id), 10_000, `the answer to the ${bad.what} profile`);
    const answer = got.find((r) => r.id === id)!;
    t.false(answer.ok, bad.what);
    t.is(answer.error?.code, bad.code, bad.what);
    t.is((answer.result as { inForce?: number }).inForce, 2, bad.what);
    const entry = dev.entries().at(-1)!;
    t.is(entry.kind, 'profile-refused', bad.what);
    t.is(entry.body.code, bad.code, bad.what);
    t.is(entry.body.source, 'mqtt', bad.what);
    t.true(String(entry.body.reason).length > 10, bad.what);
    t.is(dev.store.currentVersion, 2, bad.what);
    t.deepEqual(readFileSync(dev.path), inForce, bad.what);
  }
  t.is(dev.entries().filter((e) => e.kind === 'profile-refused').length, 6);
});

test('the gateway retains only a profile signed by its unit for the device of the topic, never an older one; a device may not publish its profile', async (t) => {
  const s = await station(t);
  const tech = await connectAs(s.gw.url, s.pki.issue('technician', 't1'), 't1:test');
  t.teardown(() => tech.endAsync());
  const good = s.sign(D, 5);
  await tech.publishAsync(deviceTopic('profile', U, D), good, { qos: 1, retain: false });
  await waitFor(() => existsSync(join(s.config.profilesDir!, `${D}.signed.json`)), 5000, 'the kept profile');
  t.deepEqual(await retainedProfile(s, D), good, 'retained even though the technician forgot the flag');

  for (const bad of badProfiles(t, s)) {
    const mark = s.rejects.length;
    await tech.publishAsync(deviceTopic('profile', U, D), bad.bytes, { qos: 1, retain: true });
    await waitFor(() => s.rejects.length > mark, 5000, `the gateway to refuse the ${bad.what} profile`);
    const reject = s.rejects[mark]!;
    t.is(reject.reason, 'schema', bad.what);
    t.is(reject.topic, deviceTopic('profile', U, D), bad.what);
    // The gateway's own check: the reason names the code, except where the topic schema stops it first.
    if (!['malformed', 'unsigned'].includes(bad.what)) t.regex(reject.detail, new RegExp(bad.code), bad.what);
    t.true(tech.connected, `${bad.what}: acknowledged and dropped, not disconnected`);
  }
  t.deepEqual(await retainedProfile(s, D), good, 'still the good one');
  t.deepEqual(readFileSync(join(s.config.profilesDir!, `${D}.signed.json`)), good);

  const device = await connectAs(s.gw.url, s.pki.issue('device', D), D);
  const mark = s.rejects.length;
  device.publish(deviceTopic('profile', U, D), s.sign(D, 6), { qos: 1, retain: true });
  await closedBy(device);
  t.is(s.rejects[mark]?.reason, 'acl-publish');
  t.deepEqual(await retainedProfile(s, D), good);
});

test('a device that connects after the push gets the retained profile, also after the gateway restarted', async (t) => {
  const s = await station(t);
  const dev = await simDevice(t, s, D, s.sign(D, 1));
  const file = join(s.pki.dir, 'v2.signed.json');
  writeFileSync(file, s.sign(D, 2, 'O-2002'));
  const push = await runRecorder(['profile', 'push', file, '--gateway', s.configFile, '--wait', '1s']);
  t.is(push.code, 2, push.stdout);
  t.regex(
    push.stderr,
    /did not answer in time; profile version 2 stays retained .* applied when the device connects \(PROFILE_PUSH_NO_ANSWER\)/,
  );

  await s.restart();
  await dev.start();
  await waitFor(() => dev.store.currentVersion === 2, 10_000, 'the retained profile to be applied');
  t.like(dev.entries().at(-1), { kind: 'profile-accepted', body: { source: 'mqtt', version: 2 } });
  await waitFor(() => dev.outcomes.length > 0, 5000, 'the answer');
  t.like(dev.outcomes[0], { ok: true, result: { outcome: 'applied', officer: 'O-2002' } });
});

test('device assign: the current profile with the new officer first, version + 1, signed and pushed; the status shows the officer', async (t) => {
  const s = await station(t);
  const v1 = s.sign(D, 1, 'O-1001');
  const dev = await simDevice(t, s, D, v1);
  const manager = await watcher(t, s, 'm1');
  const officers: string[] = [];
  manager.on('message', (topic, payload) => {
    if (topic === deviceTopic('status', U, D))
      officers.push(String((JSON.parse(payload.toString()) as Status).officer));
  });
  await manager.subscribeAsync(deviceTopic('status', U, D), { qos: 1 });
  await dev.start();

  const none = await runRecorder(['device', 'assign', D, '--officer', 'O-3003', '--gateway', s.configFile]);
  t.is(none.code, 2);
  t.regex(
    none.stderr,
    /holds no profile for HN-CS-0001; give the current one with --profile FILE.*\(PROFILE_NONE\)/,
  );

  const flashed = join(s.pki.dir, 'flashed.signed.json');
  writeFileSync(flashed, v1);
  const first = await runRecorder([
    'device',
    'assign',
    D,
    '--officer',
    'O-3003',
    '--gateway',
    s.configFile,
    '--profile',
    flashed,
  ]);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /profile version 2 applied, officer O-3003/);
  // Next time the gateway's copy is the current profile.
  const second = await runRecorder([
    'device',
    'assign',
    D,
    '--officer',
    'O-4004',
    '--gateway',
    s.configFile,
    '--json',
  ]);
  t.is(second.code, 0, second.stderr);
  t.like(JSON.parse(second.stdout), {
    kind: 'answered',
    ok: true,
    version: 3,
    result: { outcome: 'applied', officer: 'O-4004' },
  });
  t.deepEqual(dev.store.current()?.officers, ['O-4004', 'O-3003', 'O-1001']);
  await waitFor(() => officers.at(-1) === 'O-4004', 5000, 'the status to show O-4004');
  t.deepEqual(
    dev
      .entries()
      .filter((e) => e.kind === 'profile-accepted')
      .map((e) => e.body.version),
    [1, 2, 3],
  );
});
