import test from 'ava';
import { copyFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { UploadReceiver } from '../../gateway/upload-receiver.ts';
import { isRecorderError } from '../../protocol/errors.ts';
import { evidenceWorld } from '../helpers/evidence-rig.ts';

test('the center checks a large segment streaming: memory stays far below its size', async (t) => {
  const world = evidenceWorld(t);
  const center = world.gateway('center', 'center');
  const device = await world.device('HN-CS-0001');
  const size = 48 * 1024 * 1024;
  const item = await device.seal(size);
  const entry = device.entries.get(item.file)!;
  // The bytes arrive as if uploaded: the incoming file is complete, then offer and done.
  copyFileSync(`${device.evidenceDir}/${item.file}`, center.store.incomingPath(device.id, item.file));
  const offer = { id: item.file, entry, bytes: item.bytes, sha256: item.sha256, deviceCert: device.certPem };
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
  t.is(ingest.plainSha256, (entry.body as { sha256: string }).sha256);
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
