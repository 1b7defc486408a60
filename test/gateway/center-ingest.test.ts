import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { caPaths } from '../../gateway/ca.ts';
import { parseGatewayConfig } from '../../gateway/config.ts';
import { UploadReceiver } from '../../gateway/upload-receiver.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { evidenceWorld, relayedOffer } from '../helpers/evidence-rig.ts';
import { testCenterKeys } from '../helpers/media.ts';

test('the center checks a large segment streaming: memory stays far below its size', async (t) => {
  const world = evidenceWorld(t);
  const center = world.gateway('center', 'center');
  const device = await world.device('HN-CS-0001');
  const size = 48 * 1024 * 1024;
  const item = await device.seal(size);
  // The bytes arrive as if uploaded: the incoming file is complete, then offer and done.
  copyFileSync(`${device.evidenceDir}/${item.file}`, center.store.incomingPath(device.id, item.file));
  const offer = relayedOffer(device, item);
  const state = await center.receiver.offer(device.id, offer);
  t.is(state.state?.offset, item.bytes);
  // Live memory only: a full collection before each sample, so garbage waiting for the collector
  // (64 KiB read buffers) does not count, while a whole file held in memory would.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().arrayBuffers;
  let peak = before;
  const sample = () => {
    gc();
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  };
  const sampler = setInterval(sample, 50);
  const started = Date.now();
  const reply = await center.receiver.done(device.id, {
    id: item.file,
    bytes: item.bytes,
    sha256: item.sha256,
  });
  clearInterval(sampler);
  t.is(reply.state?.status, 'have', JSON.stringify(reply.state));
  t.log(
    `48 MiB checked in ${Date.now() - started} ms; buffers grew by ${((peak - before) / 2 ** 20).toFixed(1)} MiB`,
  );
  // Reading the file whole would grow buffers by at least its 48 MiB; streaming stays far below.
  // The margin is wide because garbage collection lags on a loaded machine (seen: 19 MiB at load 20).
  t.true(peak - before < size * 0.75, `buffers grew by ${peak - before} bytes`);
  const ingest = center.store.lifecycle(device.id, item.file)!.ingest!;
  t.true(ingest.ok);
  t.is(ingest.plainSha256, (offer.entry.body as { sha256: string }).sha256);
});

test('a center without its private key does not start', (t) => {
  const world = evidenceWorld(t);
  const center = world.gateway('center', 'center');
  const error = t.throws(
    () =>
      new UploadReceiver({
        store: center.store,
        unit: 'HN-CS',
        holder: 'center',
        role: 'center',
        receiptKey: center.receiptKeys.privateKey,
        deviceKey: () => null,
      }),
  );
  t.true(isRecorderError(error, 'GATEWAY_CONFIG_INVALID'));
});

test("a center takes a unit's devices only on that unit's topics: another unit's station cannot relay them", async (t) => {
  const world = evidenceWorld(t);
  const center = world.gateway('center', 'center');
  const device = await world.device('HN-CS-0001');
  const item = await device.seal(4_000);
  const offer = relayedOffer(device, item);
  // The device's certificate names unit HN-CS; a station of HN-ZZ offers it on HN-ZZ's topics.
  const refused = await center.receiver.offer(device.id, offer, 'HN-ZZ');
  t.like(refused.state, { status: 'refused', code: 'UPLOAD_FORGED' });
  t.regex(refused.state!.reason ?? '', /unit HN-CS, relayed by a station of unit HN-ZZ/);
  const line = readFileSync(device.journalPath, 'utf8').split('\n')[0]!;
  const journal = await center.receiver.journal(
    device.id,
    { from: 0, lines: [line], deviceCert: device.certPem },
    'HN-ZZ',
  );
  t.like(journal, { status: 'refused', code: 'UPLOAD_FORGED' });
  t.is(center.store.journalHead(device.id), null);
  t.is(center.store.knownDevice(device.id), null, 'nothing of the device is remembered');
  // On its own unit's topics the same offer is taken.
  t.is((await center.receiver.offer(device.id, offer, 'HN-CS')).state?.status, 'send');
  // Now the center knows the device; without a certificate, HN-ZZ still cannot offer for it.
  const { deviceCert: _cert, ...bare } = offer;
  t.like((await center.receiver.offer(device.id, bare, 'HN-ZZ')).state, {
    status: 'refused',
    code: 'UPLOAD_FORGED',
  });
  t.is((await center.receiver.offer(device.id, bare, 'HN-CS')).state?.status, 'send');
  // Once the center holds the device's journal, HN-ZZ learns nothing of it: no head, no receipt,
  // whether its batch is out of place, in place, or carries the device's certificate.
  const held = await center.receiver.journal(
    device.id,
    { from: 0, lines: [line], deviceCert: device.certPem },
    'HN-CS',
  );
  t.like(held, { status: 'ok', head: { seq: 0 } });
  t.truthy(held.receipt);
  for (const probe of [{ from: 0 }, { from: 1 }, { from: 7 }, { from: 7, deviceCert: device.certPem }]) {
    const answer = await center.receiver.journal(device.id, { ...probe, lines: [line] }, 'HN-ZZ');
    t.like(answer, { status: 'refused', code: 'UPLOAD_FORGED', head: null }, JSON.stringify(probe));
    t.is(answer.receipt, undefined);
  }
  t.is(center.store.journalHead(device.id)?.seq, 0);
});

test('units: a center only, each unit named once, none the start of another', (t) => {
  const world = evidenceWorld(t);
  const base = world.pki.config();
  const other = { unit: 'HN-ZZ', ca: 'zz/ca.cert.pem', crl: 'zz/crl.pem' };
  const parse = (evidence: object, units: object[]) =>
    parseGatewayConfig({ ...base, evidence: { ...base.evidence, ...evidence }, units });
  t.deepEqual(parse({ role: 'center', centerKey: 'c.pem' }, [other]).units, [other]);
  for (const [evidence, units, why] of [
    [{ role: 'station' }, [other], /only a gateway in the center role/],
    [{ role: 'center', centerKey: 'c.pem' }, [other, other], /unit HN-ZZ is named twice/],
    [{ role: 'center', centerKey: 'c.pem' }, [{ ...other, unit: 'HN-CS' }], /unit HN-CS is named twice/],
    [
      { role: 'center', centerKey: 'c.pem' },
      [{ ...other, unit: 'HN-CS-X' }],
      /unit HN-CS-X begins with unit HN-CS/,
    ],
    [
      { role: 'center', centerKey: 'c.pem' },
      [{ ...other, unit: 'HN' }],
      /unit HN-CS begins with unit HN and/,
    ],
  ] as const) {
    const error = t.throws(() => parse(evidence, [...units]));
    t.true(isRecorderError(error, 'GATEWAY_CONFIG_INVALID'));
    t.regex((error as Error).message, why);
  }
});

test("an item offered on one unit's topics takes chunks and done on those only; its receipt goes to that unit only", async (t) => {
  const world = evidenceWorld(t);
  const center = world.gateway('center', 'center');
  const device = await world.device('HN-CS-0001');
  const item = await device.seal(4_000);
  const bytes = readFileSync(`${device.evidenceDir}/${item.file}`);
  const offer = relayedOffer(device, item);
  const done = { id: item.file, bytes: item.bytes, sha256: item.sha256 };
  t.is((await center.receiver.offer(device.id, offer, 'HN-CS')).state?.status, 'send');
  // HN-ZZ's station, on its own topics, can neither add bytes to HN-CS's upload nor finish it.
  t.like(await center.receiver.chunk(device.id, item.file, 0, Buffer.alloc(100), 'HN-ZZ'), {
    status: 'refused',
    code: 'UPLOAD_NO_OFFER',
  });
  t.like((await center.receiver.done(device.id, done, 'HN-ZZ')).state, {
    status: 'refused',
    code: 'UPLOAD_NO_OFFER',
  });
  // A relaying station of HN-ZZ gone releases nothing of HN-CS's; HN-CS's station gone, its item's
  // file is closed, and the upload goes on when it is back.
  t.is(await center.receiver.release({ unit: 'HN-ZZ' }), 0);
  t.is(await center.receiver.chunk(device.id, item.file, 0, bytes.subarray(0, 1_000), 'HN-CS'), null);
  t.is(await center.receiver.release({ unit: 'HN-CS' }), 1);
  t.is(await center.receiver.chunk(device.id, item.file, 1_000, bytes.subarray(1_000), 'HN-CS'), null);
  const stored = await center.receiver.done(device.id, done, 'HN-CS');
  t.is(stored.state?.status, 'have', JSON.stringify(stored.state));
  t.truthy(stored.receipt);
  // Asked again, the original receipt goes to HN-CS, and nothing to HN-ZZ.
  t.deepEqual((await center.receiver.done(device.id, done, 'HN-CS')).receipt, stored.receipt);
  const asked = await center.receiver.done(device.id, done, 'HN-ZZ');
  t.like(asked.state, { status: 'refused', code: 'UPLOAD_NO_OFFER' });
  t.is(asked.receipt, undefined);
});

test('a center of several units takes a device only under an id that begins with its unit', async (t) => {
  const a = evidenceWorld(t);
  const b = evidenceWorld(t, 'HN-ZZ');
  const rig = a.gateway('center', 'center');
  const receiver = new UploadReceiver({
    store: rig.store,
    unit: 'HN-CS',
    holder: 'center',
    role: 'center',
    receiptKey: rig.receiptKeys.privateKey,
    deviceKey: () => null,
    centerKey: testCenterKeys().privateKey,
    trustedCas: [a, b].map((w) => new X509Certificate(readFileSync(caPaths(w.pki.caDir).cert))),
    deviceIdsNameUnit: true,
  });
  t.teardown(() => receiver.close());
  // 0001: an id another unit may use too; HN-CS-0009: HN-ZZ's CA squatting an id of HN-CS's.
  for (const [id, code] of [
    ['HN-ZZ-0001', null],
    ['0001', 'DEVICE_ID_NOT_OF_UNIT'],
    ['HN-CS-0009', 'DEVICE_ID_NOT_OF_UNIT'],
  ] as const) {
    const device = await b.device(id);
    const item = await device.seal(2_000);
    const offer = relayedOffer(device, item);
    const reply = await receiver.offer(id, offer, 'HN-ZZ');
    if (code === null) t.is(reply.state?.status, 'send', JSON.stringify(reply.state));
    else {
      t.like(reply.state, { status: 'refused', code }, id);
      t.regex(reply.state!.reason ?? '', /must begin with HN-ZZ-/);
      t.is(rig.store.knownDevice(id), null, `${id} is not remembered`);
    }
  }
});
