import test from 'ava';
import { randomBytes } from 'node:crypto';
import { isRecorderError } from '../../protocol/errors.ts';
import { openSerialLink, type SerialLink, type SerialLinkOptions } from '../../hardware/serial-link.ts';
import { LineRelay, type LineOptions } from '../helpers/serial-line.ts';
import { startPtyPair } from '../helpers/socat.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';
import type { ExecutionContext } from 'ava';

async function linkedPair(t: ExecutionContext, line: LineOptions = {}, linkOptions: SerialLinkOptions = {}) {
  needPrograms('socat');
  const dir = tempDir(t);
  const devicePair = await startPtyPair(dir, 'dev');
  const hostPair = await startPtyPair(dir, 'host');
  const relay = await LineRelay.start(devicePair.b, hostPair.b, line);
  const device = await openSerialLink({ path: devicePair.a, ...linkOptions });
  const host = await openSerialLink({ path: hostPair.a, ...linkOptions });
  t.teardown(async () => {
    await host.close();
    await device.close();
    await relay.stop();
    await devicePair.kill();
    await hostPair.kill();
  });
  return { device, host, relay, hostPair };
}

function collect(link: SerialLink): Buffer[] {
  const got: Buffer[] = [];
  link.on('message', (m) => got.push(m));
  return got;
}

test('messages cross a real pty line in order, each acknowledged, both ways', async (t) => {
  const { device, host } = await linkedPair(t);
  const atDevice = collect(device);
  const atHost = collect(host);
  const sent = Array.from({ length: 20 }, (_, i) => randomBytes(1 + i * 200));
  await host.reset();
  for (const m of sent) await host.send(m);
  await device.send(Buffer.from('reply'));
  t.deepEqual(atDevice, sent);
  t.deepEqual(atHost, [Buffer.from('reply')]);
  t.is(host.stats.retransmissions, 0);
});

test('noise on the line: flipped bits and dropped bytes are retransmitted, nothing delivered twice or lost', async (t) => {
  const { device, host, relay } = await linkedPair(
    t,
    { flipProbability: 1 / 3000, dropProbability: 1 / 3000, seed: 7 },
    // An unpaced pty is far faster than 115200 baud: a short timeout keeps the test quick.
    { ackTimeoutMs: 40, maxAttempts: 30, maxPayload: 1024, baud: 2_000_000 },
  );
  const atDevice = collect(device);
  const sent = Array.from({ length: 40 }, () => randomBytes(1000));
  for (const m of sent) await host.send(m);
  t.deepEqual(atDevice, sent);
  t.true(relay.toDevice.flipped + relay.toDevice.dropped > 0, 'the relay injected noise');
  t.true(host.stats.retransmissions > 0);
  const discarded = Object.values(device.stats.discarded).reduce((a, b) => a + b, 0);
  t.true(discarded > 0, 'the receiver counted what it discarded');
  t.log(
    `noise: ${relay.toDevice.flipped} flipped, ${relay.toDevice.dropped} dropped; ` +
      `${host.stats.retransmissions} retransmissions, ${device.stats.duplicates} duplicates, ` +
      `discarded ${JSON.stringify(device.stats.discarded)}`,
  );
});

test('lost acknowledgements: the retransmitted frame is recognised as a duplicate', async (t) => {
  const { device, host, relay } = await linkedPair(t, {}, { ackTimeoutMs: 80, maxAttempts: 20 });
  const atDevice = collect(device);
  await host.send(Buffer.from('first'));
  // Acks travel device → host: lose them for a while, so the host sends the same frame again.
  relay.options.noiseOn = 'toHost';
  relay.options.dropProbability = 1;
  const pending = host.send(Buffer.from('second'));
  await new Promise((r) => setTimeout(r, 400));
  relay.options.dropProbability = 0;
  await pending;
  t.deepEqual(atDevice, [Buffer.from('first'), Buffer.from('second')]);
  t.true(device.stats.duplicates >= 1);
});

test('a pulled cable ends with LINK_TIMEOUT after the set number of attempts', async (t) => {
  const { host, relay } = await linkedPair(t, {}, { ackTimeoutMs: 30, maxAttempts: 4, maxPayload: 256 });
  relay.cut = true;
  const started = Date.now();
  const error = await t.throwsAsync(host.send(Buffer.from('anyone there?')));
  t.true(isRecorderError(error, 'LINK_TIMEOUT'), String(error));
  t.is(host.stats.framesSent, 4);
  t.true(Date.now() - started < 5000);
  // The link stays usable once the cable is back.
  relay.cut = false;
  await host.send(Buffer.from('back'));
});

test('killing socat closes the line: pending sends fail with LINK_CLOSED', async (t) => {
  const { host, hostPair } = await linkedPair(t);
  await hostPair.kill();
  const error = await t.throwsAsync(
    (async () => {
      for (let i = 0; i < 50; i++) {
        await host.send(Buffer.from('x'));
        await new Promise((r) => setTimeout(r, 20));
      }
    })(),
  );
  t.true(isRecorderError(error, 'LINK_CLOSED') || isRecorderError(error, 'LINK_TIMEOUT'), String(error));
});
