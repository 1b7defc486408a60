/**
 * Issue 6 end to end: a real device process records (simulated camera), docks, and uploads to the
 * station gateway over mutual-TLS MQTT on loopback; the gateway restarts mid-upload.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { controlRequest } from '../../device/control-socket.ts';
import type { RecorderStatus } from '../../device/recorder.ts';
import { statePaths } from '../../device/state-paths.ts';
import { startGateway, type GatewayHandle } from '../../gateway/gateway.ts';
import { DeviceProcess, journalEntries, simRecorderFiles, sleep } from '../helpers/device-process.ts';
import { testPki, type TestPki } from '../helpers/pki.ts';
import { tempDir } from '../helpers/temp.ts';

const UNIT = 'HN';
const DEVICE = 'HN-CS-0001';

/** A recorder whose evidence key is bound into its certificate, pointed at the gateway, not started. */
async function uploadingRecorder(t: ExecutionContext, pki: TestPki, url: string, chunkBytes = 65_536) {
  const dir = tempDir(t);
  const keys = generateKeyPairSync('ed25519');
  const files = await simRecorderFiles(dir);
  const paths = statePaths(files.state);
  mkdirSync(dirname(paths.privateKey), { recursive: true, mode: 0o700 });
  writeFileSync(paths.privateKey, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(paths.publicKey, keys.publicKey.export({ type: 'spki', format: 'pem' }));
  const who = pki.issue('device', DEVICE, {
    evidencePublicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }) as string,
  });
  const doc = JSON.parse(readFileSync(files.profile, 'utf8'));
  doc.gateway = {
    url,
    cert: who.cert,
    key: who.key,
    ca: who.ca,
    statusIntervalSeconds: 5,
    receiptKey: pki.receiptKey.pub,
    upload: { chunkBytes, window: 4 },
  };
  writeFileSync(files.profile, JSON.stringify(doc, null, 2));
  return { files, evidenceDir: doc.storage.evidenceDir as string };
}

function control(state: string, request: 'dock' | 'undock'): Promise<RecorderStatus> {
  return controlRequest(statePaths(state).controlSocket, request) as Promise<RecorderStatus>;
}

async function station(t: ExecutionContext, pki: TestPki, port = 0): Promise<GatewayHandle> {
  const gw = await startGateway(
    pki.config({ listen: { host: '127.0.0.1', port }, fleet: { publishIntervalMs: 500 } }),
    {
      logSink: () => {},
    },
  );
  t.teardown(() => gw.close().catch(() => undefined));
  return gw;
}

async function recordAndStop(device: DeviceProcess, seconds: number): Promise<void> {
  await device.press('record');
  await sleep(seconds * 1000);
  await device.press('record', 'long');
  await device.until((s) => s.state === 'standby', 30_000);
  await sleep(1500);
}

test('a recording docks and every sealed item reaches the station, receipted, then deleted on the device', async (t) => {
  const pki = testPki(t, UNIT);
  const gw = await station(t, pki);
  const { files, evidenceDir } = await uploadingRecorder(t, pki, gw.url);
  const device = await DeviceProcess.start(t, files);
  await recordAndStop(device, 4);
  const before = await device.status();
  t.true(before.uploads.enabled);
  t.false(before.uploads.active, 'not docked: no upload');
  t.true(before.pendingUploads.count >= 4, `${before.pendingUploads.count} pending`);
  t.is(gw.uploads.store.list().length, 0);

  await control(files.state, 'dock');
  // The last segment may still be sealing (its `.tmp-…` file in the evidence dir) when the queue
  // first empties on a loaded machine; sealed while docked, it is uploaded too.
  const after = await device.until(
    (s) => s.pendingUploads.count === 0 && readdirSync(evidenceDir).length === 0,
    60_000,
  );
  t.is(after.pendingUploads.bytes, 0);
  t.is(after.pendingUploads.oldestDeadline, null);
  t.deepEqual(readdirSync(evidenceDir), []);

  const entries = journalEntries(files.state);
  const sealed = entries.filter((e) => e.kind === 'segment' || e.kind === 'photo');
  const receipts = entries.filter((e) => e.kind === 'upload-receipt');
  t.is(receipts.length, sealed.length);
  const stored = gw.uploads.store.list({ device: DEVICE });
  t.deepEqual(stored.map((s) => s.id).sort(), sealed.map((e) => e.body.evidence.file).sort());
  for (const item of stored) {
    t.is(await gw.uploads.store.checkObject(item), null, item.id);
    t.is(statSync(gw.uploads.store.objectPath(item.sha256)).mode & 0o222, 0);
  }
  // The station's copy of the journal is the device's (up to the last sync after the receipts).
  await sleep(1000);
  const deviceLines = readFileSync(statePaths(files.state).journal, 'utf8').trim().split('\n');
  const stationLines = gw.uploads.store.journalLines(DEVICE);
  const lastReceipt = Math.max(...receipts.map((r) => r.seq));
  t.true(stationLines.length > lastReceipt, `station holds ${stationLines.length} lines`);
  t.deepEqual(stationLines, deviceLines.slice(0, stationLines.length));

  // Recording while docked: the new items go up as they are sealed.
  await recordAndStop(device, 2);
  // Fails by timeout unless new items reach the station and leave the device.
  await device.until(
    (s) =>
      s.pendingUploads.count === 0 &&
      readdirSync(evidenceDir).length === 0 &&
      gw.uploads.store.list({ device: DEVICE }).length > stored.length,
    60_000,
  );
  t.is(await device.stop('SIGINT'), 0, device.output);
});

test('the gateway restarts mid-upload (twice): the upload resumes, nothing lost or stored twice', async (t) => {
  const pki = testPki(t, UNIT);
  let gw = await station(t, pki);
  const port = gw.address.port;
  // Small chunks so the upload takes long enough to be cut.
  const { files } = await uploadingRecorder(t, pki, gw.url, 4096);
  const device = await DeviceProcess.start(t, files);
  await recordAndStop(device, 5);
  const pending = (await device.status()).pendingUploads.count;
  await control(files.state, 'dock');
  for (let cut = 0; cut < 2; cut++) {
    // Wait for some bytes to arrive, then stop the station and start it again on the same port.
    const bytesBefore = gw.uploads.counters.bytes;
    const deadline = Date.now() + 30_000;
    while (gw.uploads.counters.bytes < bytesBefore + 50_000 && Date.now() < deadline) await sleep(20);
    await gw.close();
    await sleep(300);
    gw = await station(t, pki, port);
  }
  await device.until((s) => s.pendingUploads.count === 0, 120_000);
  const stored = gw.uploads.store.list({ device: DEVICE });
  t.true(stored.length >= pending);
  t.is(new Set(stored.map((s) => s.id)).size, stored.length);
  for (const item of stored) t.is(await gw.uploads.store.checkObject(item), null, item.id);
  const receipts = journalEntries(files.state).filter((e) => e.kind === 'upload-receipt');
  t.is(new Set(receipts.map((r) => r.body.file)).size, stored.length);
  t.deepEqual(readdirSync(join(gw.uploads.store.root, 'incoming')), []);
  t.is(await device.stop('SIGINT'), 0, device.output);
});
