/**
 * Issue 5 "Tests": wrong CA, expired certificate, revoked certificate, a device publishing on another
 * device's topic, a manager publishing status, malformed JSON, an oversized frame, 10,000 random
 * payloads: the gateway stays up, counts the rejects, and honest devices see no difference.
 * One gateway for the whole file, with one honest device and one manager watching throughout.
 */
import test from 'ava';
import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { TelemetryClient } from '../../device/telemetry.ts';
import { initCa, issueCertificate, revokeCertificate, writeIssued } from '../../gateway/ca.ts';
import { startGateway, type GatewayHandle } from '../../gateway/gateway.ts';
import type { RejectEvent } from '../../gateway/broker.ts';
import type { RejectReason } from '../../protocol/schemas/fleet.ts';
import { decodePayload, deviceTopic } from '../../protocol/topics.ts';
import { closedBy, connectAs, makeStatus, tlsOptions, waitFor } from '../helpers/mqtt.ts';
import { testPki, type TestIdentity, type TestPki } from '../helpers/pki.ts';
import { tempDir } from '../helpers/temp.ts';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { generateKeyPairSync } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';

const UNIT = 'HN-CS';
const HONEST = 'HN-CS-0001';

interface World {
  pki: TestPki;
  gw: GatewayHandle;
  honest: TelemetryClient;
  manager: MqttClient;
  /** statuses of the honest device the manager received, in order */
  seen: string[];
  rejects: RejectEvent[];
  /** bumped by the test; the honest device reports it as its officer so each status is distinct */
  honest$: { seq: number };
}

let world: World;

let dir = '';

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'recorder-gw-security-'));
  const pki = testPki(dir, UNIT);
  const gw = await startGateway(pki.config({ fleet: { publishIntervalMs: 500 }, maxFrameBytes: 65_536 }), {
    logSink: () => {},
  });
  const rejects: RejectEvent[] = [];
  gw.events.on('reject', (e: RejectEvent) => rejects.push(e));
  const dev = pki.issue('device', HONEST);
  const honest$ = { seq: 0 };
  const honest = new TelemetryClient({
    url: gw.url,
    unit: UNIT,
    device: HONEST,
    ...tlsOptions(dev),
    getStatus: () => makeStatus(HONEST, { officer: `seq-${honest$.seq}` }),
    changeCheckMs: 50,
  });
  honest.start();
  await new Promise((r) => honest.once('connect', r));
  const manager = await connectAs(gw.url, pki.issue('manager', 'mgr-1'), 'mgr-1:test');
  const seen: string[] = [];
  manager.on('message', (topic, payload) => {
    if (topic === deviceTopic('status', UNIT, HONEST)) seen.push(JSON.parse(payload.toString()).officer);
  });
  await manager.subscribeAsync(`rec/v1/${UNIT}/+/status`, { qos: 1 });
  world = { pki, gw, honest, manager, seen, rejects, honest$ };
});

test.after.always(async () => {
  await world?.manager.endAsync();
  await world?.honest.stop();
  await world?.gw.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The honest device changes its status; the manager must see the new one promptly. */
async function honestStillServed(): Promise<void> {
  world.honest$.seq++;
  const want = `seq-${world.honest$.seq}`;
  await waitFor(() => world.seen.includes(want), 10_000, `the manager to see ${want}`);
  if (!world.honest.connected) throw new Error('the honest device was disconnected');
}

function count(reason: RejectReason): number {
  return world.gw.counters()[reason];
}

test.serial('a client with a certificate from another CA is refused in the TLS handshake', async (t) => {
  const dir = tempDir(t);
  initCa(join(dir, 'other'), { unit: UNIT });
  const evidence = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const foreign = issueCertificate(join(dir, 'other'), {
    role: 'device',
    id: HONEST,
    evidencePublicKeyPem: evidence,
  });
  const paths = writeIssued(join(dir, 'out'), 'device', HONEST, foreign);
  const before = count('tls');
  const who: TestIdentity = {
    cert: paths.cert,
    key: paths.key!,
    ca: world.pki.issue('manager', 'x').ca,
    serial: '',
    certPem: '',
  };
  await t.throwsAsync(connectAs(world.gw.url, who, HONEST));
  await waitFor(() => count('tls') === before + 1, 5000, 'the tls reject count');
  await honestStillServed();
  t.true(world.honest.connected);
});

test.serial('an expired certificate is refused', async (t) => {
  const expired = world.pki.issue('device', 'HN-CS-0100', {
    notBefore: new Date(Date.now() - 10 * 86_400_000),
    validDays: 2,
  });
  const before = count('tls');
  await t.throwsAsync(connectAs(world.gw.url, expired, 'HN-CS-0100'));
  await waitFor(() => count('tls') === before + 1, 5000, 'the tls reject count');
  await honestStillServed();
});

/** The suite the gateway settles on with a device offering `ciphers` (Node's defaults when absent). */
async function negotiatedCipher(ciphers?: string): Promise<string> {
  const { hostname, port } = new URL(world.gw.url);
  const socket = tlsConnect({
    host: hostname,
    port: Number(port),
    servername: 'localhost',
    ...tlsOptions(world.pki.issue('device', 'HN-CS-0101')),
    ...(ciphers ? { ciphers } : {}),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return socket.getCipher().standardName;
  } finally {
    socket.destroy();
  }
}

test.serial(
  'the gateway prefers TLS_AES_128_GCM_SHA256 and still serves a client that offers only AES-256',
  async (t) => {
    // Node's client default lists AES-256 first: the gateway's own order decides.
    t.is(await negotiatedCipher(), 'TLS_AES_128_GCM_SHA256');
    t.is(await negotiatedCipher('TLS_AES_256_GCM_SHA384'), 'TLS_AES_256_GCM_SHA384');
  },
);

test.serial('a revoked certificate is cut off and refused once the CRL is rewritten', async (t) => {
  const doomed = world.pki.issue('device', 'HN-CS-0200');
  const first = await connectAs(world.gw.url, doomed, 'HN-CS-0200');
  const dropped = closedBy(first, 10_000);
  revokeCertificate(world.pki.caDir, doomed.serial);
  await dropped; // a connection made before the revocation is closed too
  first.end(true);
  const before = count('tls');
  // The gateway polls crl.pem every second: try until it has loaded the new one.
  let refused = false;
  for (let i = 0; i < 40 && !refused; i++) {
    try {
      const c = await connectAs(world.gw.url, doomed, 'HN-CS-0200');
      await c.endAsync();
      await new Promise((r) => setTimeout(r, 250));
    } catch {
      refused = true;
    }
  }
  t.true(refused, 'the revoked certificate still connects');
  t.true(count('tls') > before);
  await honestStillServed();
});

test.serial("a device publishing on another device's topic is disconnected and counted", async (t) => {
  const rogue = world.pki.issue('device', 'HN-CS-0300');
  const client = await connectAs(world.gw.url, rogue, 'HN-CS-0300');
  const before = count('acl-publish');
  const closed = closedBy(client);
  client.publish(
    deviceTopic('status', UNIT, HONEST),
    JSON.stringify(makeStatus(HONEST, { officer: 'forged' })),
    {
      qos: 1,
      retain: true,
    },
  );
  await closed;
  t.is(count('acl-publish'), before + 1);
  await honestStillServed();
  t.false(world.seen.includes('forged'));
  client.end(true);
});

test.serial(
  'a manager publishing status is disconnected; $SYS and gateway topics are refused too',
  async (t) => {
    const mgr = world.pki.issue('manager', 'mgr-2');
    const before = count('acl-publish');
    for (const topic of [
      deviceTopic('status', UNIT, HONEST),
      '$SYS/x/heartbeat',
      `rec/v1/${UNIT}/gateway/fleet`,
    ]) {
      const client = await connectAs(world.gw.url, mgr, 'mgr-2');
      const closed = closedBy(client);
      client.publish(topic, JSON.stringify(makeStatus(HONEST, { officer: 'forged' })), { qos: 1 });
      await closed;
      client.end(true);
    }
    t.is(count('acl-publish'), before + 3);
    await honestStillServed();
    t.false(world.seen.includes('forged'));
  },
);

test.serial('a refused subscription gets a failure code and the connection stays up', async (t) => {
  const dev = world.pki.issue('device', 'HN-CS-0400');
  const client = await connectAs(world.gw.url, dev, 'HN-CS-0400');
  const before = count('acl-subscribe');
  // mqtt.js turns an all-refused SUBACK into an error carrying the packet.
  const error = await t.throwsAsync<Error & { packet: { granted: number[] } }>(
    client.subscribeAsync(
      [deviceTopic('status', UNIT, HONEST), deviceTopic('cmd', UNIT, HONEST), `rec/v1/${UNIT}/#`, '#'],
      { qos: 1 },
    ),
  );
  t.deepEqual(error?.packet.granted, [128, 128, 128, 128]);
  const own = await client.subscribeAsync(deviceTopic('cmd', UNIT, 'HN-CS-0400'), { qos: 1 });
  t.is(own[0]!.qos, 1);
  t.is(count('acl-subscribe'), before + 4);
  t.true(client.connected);
  await client.endAsync();
});

test.serial('a client id other than the certificate id is refused', async (t) => {
  const dev = world.pki.issue('device', 'HN-CS-0500');
  const before = count('identity');
  await t.throwsAsync(connectAs(world.gw.url, dev, HONEST)); // would take over the honest session
  t.is(count('identity'), before + 1);
  await honestStillServed();
});

test.serial(
  'malformed JSON and schema violations are dropped and counted; the sender stays connected',
  async (t) => {
    const dev = world.pki.issue('device', 'HN-CS-0600');
    const client = await connectAs(world.gw.url, dev, 'HN-CS-0600');
    const topic = deviceTopic('status', UNIT, 'HN-CS-0600');
    const before = count('schema');
    await client.publishAsync(topic, '{"device": "HN-CS-0600", ', { qos: 1, retain: true });
    await client.publishAsync(
      topic,
      JSON.stringify({ ...makeStatus('HN-CS-0600'), battery: { percent: 250 } }),
      {
        qos: 1,
        retain: true,
      },
    );
    await client.publishAsync(topic, JSON.stringify(makeStatus(HONEST)), { qos: 1, retain: true }); // names another device
    await client.publishAsync(deviceTopic('availability', UNIT, 'HN-CS-0600'), 'maybe', { qos: 1 });
    t.is(count('schema'), before + 4);
    t.true(client.connected);
    const schemaRejects = world.rejects.filter((r) => r.reason === 'schema' && r.clientId === 'HN-CS-0600');
    t.true(schemaRejects.some((r) => r.problems?.some((p) => p.path === '/battery/percent')));
    t.true(schemaRejects.some((r) => r.problems?.some((p) => p.path === '/device')));
    // Nothing invalid was retained: a new subscriber gets no status for HN-CS-0600.
    const watcher = await connectAs(world.gw.url, world.pki.issue('manager', 'mgr-3'), 'mgr-3');
    const got: string[] = [];
    watcher.on('message', (tp) => got.push(tp));
    await watcher.subscribeAsync(topic, { qos: 1 });
    await new Promise((r) => setTimeout(r, 300));
    t.deepEqual(got, []);
    await watcher.endAsync();
    await client.endAsync();
    await honestStillServed();
  },
);

test.serial('an oversized frame closes the connection before the body is buffered', async (t) => {
  const dev = world.pki.issue('device', 'HN-CS-0700');
  const client = await connectAs(world.gw.url, dev, 'HN-CS-0700');
  const before = count('frame-too-large');
  const closed = closedBy(client);
  client.publish(deviceTopic('event', UNIT, 'HN-CS-0700'), Buffer.alloc(200_000, 0x20), { qos: 0 });
  await closed;
  t.is(count('frame-too-large'), before + 1);
  client.end(true);
  await honestStillServed();
});

test.serial(
  '10,000 random payloads on a device’s own topics: every invalid one counted, none delivered',
  async (t) => {
    const id = 'HN-CS-0800';
    const fuzzer = await connectAs(world.gw.url, world.pki.issue('device', id), id);
    const watcher = await connectAs(world.gw.url, world.pki.issue('manager', 'mgr-4'), 'mgr-4');
    const endMarker = JSON.stringify({
      device: id,
      time: new Date().toISOString(),
      seq: 0,
      kind: 'fuzz-end',
      body: {},
    });
    let delivered = 0;
    let ended = false;
    watcher.on('message', (_topic, payload) => {
      if (payload.toString() === endMarker) ended = true;
      else delivered++;
    });
    const topics = (['status', 'event', 'availability', 'cmdResult'] as const).map((n) => ({
      n,
      topic: deviceTopic(n, UNIT, id),
    }));
    await watcher.subscribeAsync(
      topics.map((x) => x.topic),
      { qos: 0 },
    );
    const before = count('schema');
    let expectedInvalid = 0;
    const payloads = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
      fc.json({ maxDepth: 3 }).map((s) => Buffer.from(s)),
      fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
      fc
        .record({
          device: fc.constantFrom(id, HONEST),
          time: fc.string(),
          seq: fc.integer(),
          kind: fc.string(),
        })
        .map((o) => Buffer.from(JSON.stringify(o))),
    );
    const samples = fc.sample(fc.tuple(fc.nat({ max: 3 }), payloads), { numRuns: 10_000, seed: 5 });
    for (const [i, payload] of samples) {
      const { n, topic } = topics[i]!;
      const decoded = decodePayload(n, payload);
      const valid =
        decoded.ok &&
        !(typeof decoded.value === 'object' && 'device' in decoded.value && decoded.value.device !== id);
      if (!valid) expectedInvalid++;
      fuzzer.publish(topic, payload, { qos: 0 });
    }
    // Order on one connection is kept: when the marker comes through, everything before it was handled.
    await fuzzer.publishAsync(deviceTopic('event', UNIT, id), endMarker, { qos: 1 });
    await waitFor(() => ended, 60_000, 'the end marker');
    t.true(expectedInvalid > 9_000, `only ${expectedInvalid} invalid samples`);
    t.is(count('schema') - before, expectedInvalid);
    t.is(delivered, 10_000 - expectedInvalid);
    t.true(fuzzer.connected);
    await fuzzer.endAsync();
    await watcher.endAsync();
    await honestStillServed();
  },
);

test.serial('after all of it the honest device still shows in the fleet without alerts', async (t) => {
  await honestStillServed();
  const fleet = world.gw.fleet();
  const honest = fleet.devices.find((d) => d.device === HONEST)!;
  t.true(honest.online);
  t.deepEqual(honest.alerts, []);
  const c = world.gw.counters();
  t.true(c.tls >= 3 && c['acl-publish'] >= 4 && c.schema >= 4 && c['frame-too-large'] >= 1);
});
