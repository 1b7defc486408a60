/**
 * A center trusts the CAs of several units (issue 6 item 4); each CA speaks for its own unit only.
 * A certificate's unit is its subject's O, and it must be the O of the CA that issued it: at the
 * broker (TLS clients), in the center's check of relayed device certificates, and in the config
 * (each admitted CA names the unit it is admitted for).
 */
import test from 'ava';
import mqtt from 'mqtt';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RejectEvent } from '../../gateway/broker.ts';
import { caPaths, writeCrl } from '../../gateway/ca.ts';
import type { LogRecord } from '../../gateway/log.ts';
import { loadGatewayConfig } from '../../gateway/config.ts';
import { checkDeviceCertificate } from '../../gateway/device-certificate.ts';
import { startGateway } from '../../gateway/gateway.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import type { GatewayStatus } from '../../protocol/schemas/fleet.ts';
import { gatewayTopic } from '../../protocol/topics.ts';
import { evidenceWorld, relayedOffer, type EvidenceWorld, type GatewayRig } from '../helpers/evidence-rig.ts';
import { namingUnit, testPki, type TestIdentity } from '../helpers/pki.ts';
import { tempDir } from '../helpers/temp.ts';
import { waitFor } from '../helpers/wait.ts';

/** A center of `a`'s unit admitting `b`'s unit (or `b`'s CA under the name `as`). */
function centerConfig(a: EvidenceWorld, b: EvidenceWorld, as = b.pki.unit): GatewayRig {
  const center = a.gateway('center', 'center');
  const id = a.pki.issue('gateway', 'center');
  const bCa = caPaths(b.pki.caDir);
  center.writeConfig({
    tls: { ...a.pki.config().tls, cert: id.cert, key: id.key },
    units: [{ unit: as, ca: bCa.cert, crl: bCa.crl }],
  });
  return center;
}

test("a relayed device certificate naming another unit than its CA's is refused", (t) => {
  const dir = tempDir(t);
  const a = testPki(join(dir, 'a')); // HN-CS
  const b = testPki(join(dir, 'b'), 'HN-ZZ');
  const trusted = [a, b].map((p) => new X509Certificate(readFileSync(caPaths(p.caDir).cert)));
  t.is(checkDeviceCertificate(b.issue('device', 'HN-ZZ-0001').certPem, 'HN-ZZ-0001', trusted).unit, 'HN-ZZ');
  t.is(checkDeviceCertificate(a.issue('device', 'HN-CS-0001').certPem, 'HN-CS-0001', trusted).unit, 'HN-CS');
  // HN-ZZ's CA signs a certificate for a device of HN-CS: it chains, and names the device rightly.
  const forged = namingUnit(b, b.issue('device', 'HN-CS-0002'), 'HN-CS');
  t.true(new X509Certificate(forged.certPem).verify(trusted[1]!.publicKey));
  t.regex(new X509Certificate(forged.certPem).subject, /^O=HN-CS$/m);
  const error = t.throws(() => checkDeviceCertificate(forged.certPem, 'HN-CS-0002', trusted));
  t.true(isRecorderError(error, 'DEVICE_CERT_INVALID'), error?.message);
  t.regex(error!.message, /names unit HN-CS but was issued by the CA of unit HN-ZZ/);
});

/** Connects to `url` as `who` (client id `clientId`), trusting `a`'s CA for the server. */
function connectAs(url: string, a: EvidenceWorld, who: TestIdentity, clientId = 'station') {
  return mqtt.connectAsync(
    url,
    {
      protocolVersion: 4,
      clientId,
      reconnectPeriod: 0,
      cert: readFileSync(who.cert),
      key: readFileSync(who.key),
      ca: readFileSync(caPaths(a.pki.caDir).cert),
    },
    false,
  );
}

test("a center refuses a TLS client whose certificate names another unit than its CA's", async (t) => {
  const a = evidenceWorld(t);
  const b = evidenceWorld(t, 'HN-ZZ');
  const center = centerConfig(a, b);
  const handle = await startGateway(loadGatewayConfig(center.configPath), { logSink: () => {} });
  t.teardown(() => handle.close());
  const rejects: RejectEvent[] = [];
  handle.events.on('reject', (r: RejectEvent) => rejects.push(r));
  const connect = (who: TestIdentity) => connectAs(handle.url, a, who);
  // HN-ZZ's own station is admitted ...
  const genuine = await connect(b.pki.issue('gateway', 'station'));
  t.true(genuine.connected);
  await genuine.endAsync();
  // ... a station certificate of HN-CS forged by HN-ZZ's CA is not, though TLS verifies it.
  const forged = namingUnit(b.pki, b.pki.issue('gateway', 'station'), 'HN-CS');
  await t.throwsAsync(connect(forged));
  t.true(
    rejects.some(
      (r) =>
        r.reason === 'identity' &&
        r.id === 'station' &&
        r.detail === 'certificate names unit HN-CS but was issued by the CA of unit HN-ZZ',
    ),
    JSON.stringify(rejects),
  );
  t.is(handle.counters().identity, 1);
});

test('a gateway does not start when an admitted CA names another unit than it is admitted for', async (t) => {
  const a = evidenceWorld(t);
  const b = evidenceWorld(t, 'HN-ZZ');
  const center = centerConfig(a, b, 'HN-XX');
  const error = await t.throwsAsync(
    startGateway(loadGatewayConfig(center.configPath), { logSink: () => {} }),
  );
  t.true(isRecorderError(error, 'GATEWAY_CONFIG_INVALID'), error?.message);
  t.regex(error!.message, /a CA certificate of unit HN-ZZ \(O=HN-ZZ, OU=ca, .*\) is admitted for unit HN-XX/);
});

test("an admitted unit's CRL that is missing or holds none stops the start, naming it; a bad new one keeps the previous", async (t) => {
  const a = evidenceWorld(t);
  const b = evidenceWorld(t, 'HN-ZZ');
  const center = centerConfig(a, b);
  const crl = caPaths(b.pki.caDir).crl;
  const good = `${crl}.good`;
  copyFileSync(crl, good);
  const start = (logSink: (r: LogRecord) => void = () => {}) =>
    startGateway(loadGatewayConfig(center.configPath), { logSink });
  writeFileSync(crl, 'not a CRL\n');
  let error = await t.throwsAsync(start());
  t.true(isRecorderError(error, 'GATEWAY_CONFIG_INVALID'), error?.message);
  t.is(error!.message.includes(`${crl} holds no CRL`), true, error!.message);
  rmSync(crl);
  error = await t.throwsAsync(start());
  t.true(isRecorderError(error, 'GATEWAY_CONFIG_INVALID'), error?.message);
  t.regex(error!.message, /cannot read the CRL .*crl\.pem: ENOENT/);

  copyFileSync(good, crl);
  const logs: LogRecord[] = [];
  const handle = await start((r) => void logs.push(r));
  t.teardown(() => handle.close());
  const station = b.pki.issue('gateway', 'station');
  const first = await connectAs(handle.url, a, station);
  await first.endAsync();
  // A torn or wrong copy over HN-ZZ's CRL is not loaded: HN-ZZ's station still gets in.
  writeFileSync(crl, '-----BEGIN X509 CRL-----\ntorn');
  await waitFor(
    () => logs.some((r) => r.msg === 'cannot load the new CRL; keeping the previous one' && r.path === crl),
    10_000,
    'the bad CRL refused',
  );
  t.false(logs.some((r) => r.msg === 'loaded a new CRL'));
  const again = await connectAs(handle.url, a, station);
  t.true(again.connected);
  await again.endAsync();
});

test('a center started with units takes a relayed device only under an id that begins with its unit', async (t) => {
  const a = evidenceWorld(t);
  const b = evidenceWorld(t, 'HN-ZZ');
  const handle = await startGateway(loadGatewayConfig(centerConfig(a, b).configPath), { logSink: () => {} });
  t.teardown(() => handle.close());
  for (const [id, status] of [
    ['0001', 'refused'],
    ['HN-ZZ-0001', 'send'],
  ] as const) {
    const device = await b.device(id);
    const item = await device.seal(2_000);
    const reply = await handle.uploads.receiver!.offer(id, relayedOffer(device, item), 'HN-ZZ');
    t.is(reply.state?.status, status, id);
    if (status === 'refused') t.is(reply.state?.code, 'DEVICE_ID_NOT_OF_UNIT');
  }
});

test("of another unit a center admits stations only: that unit's recorders and managers are refused", async (t) => {
  const a = evidenceWorld(t);
  const b = evidenceWorld(t, 'HN-ZZ');
  const handle = await startGateway(loadGatewayConfig(centerConfig(a, b).configPath), { logSink: () => {} });
  t.teardown(() => handle.close());
  const rejects: RejectEvent[] = [];
  handle.events.on('reject', (r: RejectEvent) => rejects.push(r));
  for (const [role, id] of [
    ['device', 'HN-ZZ-0001'],
    ['manager', 'zz-manager'],
  ] as const) {
    await t.throwsAsync(connectAs(handle.url, a, b.pki.issue(role, id), id), undefined, role);
    t.true(
      rejects.some(
        (r) =>
          r.reason === 'identity' &&
          r.detail === `a ${role} of unit HN-ZZ: of another unit this center admits stations (gateway) only`,
      ),
      JSON.stringify(rejects),
    );
  }
  // The center's own unit's recorders and managers still get in.
  for (const [role, id] of [
    ['device', 'HN-CS-0001'],
    ['manager', 'cs-manager'],
  ] as const) {
    const client = await connectAs(handle.url, a, a.pki.issue(role, id), id);
    t.true(client.connected, role);
    await client.endAsync();
  }
});

test("the gateway status names when each admitted unit's CRL expires, and one due within 30 days is warned about", async (t) => {
  const a = evidenceWorld(t);
  const b = evidenceWorld(t, 'HN-ZZ');
  const center = centerConfig(a, b);
  const day = 86_400_000;
  // HN-ZZ's CRL was signed 355 days ago: a year's validity leaves 10 days.
  writeCrl(b.pki.caDir, new Date(Date.now() - 355 * day));
  const logs: LogRecord[] = [];
  const handle = await startGateway(loadGatewayConfig(center.configPath), {
    logSink: (r) => void logs.push(r),
  });
  t.teardown(() => handle.close());
  const [own, other] = handle.broker.crls();
  t.is(own!.unit, 'HN-CS');
  t.is(other!.unit, 'HN-ZZ');
  const daysLeft = (iso: string | null) => Math.round((Date.parse(iso!) - Date.now()) / day);
  t.is(daysLeft(own!.nextUpdate), 365);
  t.is(daysLeft(other!.nextUpdate), 10);
  const warned = logs.filter((r) => /^the CRL of unit/.test(r.msg));
  t.deepEqual(
    warned.map((r) => [r.level, r.unit]),
    [['warn', 'HN-ZZ']],
  );
  t.regex(warned[0]!.msg, /^the CRL of unit HN-ZZ expires at \d{4}-/);
  // A manager of the center's unit reads it in the retained gateway status.
  const manager = a.pki.issue('manager', 'm1');
  const client = await connectAs(handle.url, a, manager, 'm1');
  t.teardown(() => client.endAsync(true));
  const statuses: GatewayStatus[] = [];
  client.on('message', (_topic, payload) => statuses.push(JSON.parse(payload.toString()) as GatewayStatus));
  await client.subscribeAsync(gatewayTopic('gatewayStatus', 'HN-CS'), { qos: 0 });
  await waitFor(() => statuses.length > 0, 5_000, 'the gateway status');
  t.deepEqual(statuses[0]!.crls, [own, other]);
});
