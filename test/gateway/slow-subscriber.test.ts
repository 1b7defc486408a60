/**
 * A subscriber that stops reading (a device manager on a bad link) must not stall the gateway for
 * everyone: after `slowClientTimeoutMs` with its connection full it is disconnected, and the other
 * subscribers keep receiving (gateway/broker.ts, aedes `drainTimeout`).
 */
import test from 'ava';
import mqttPacket from 'mqtt-packet';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { startGateway } from '../../gateway/gateway.ts';
import { deviceTopic } from '../../protocol/topics.ts';
import { connectAs, waitFor } from '../helpers/mqtt.ts';
import { testPki } from '../helpers/pki.ts';

const UNIT = 'HN-CS';
const DEVICE = 'HN-CS-0001';

test('a subscriber that stops reading is disconnected after slowClientTimeoutMs; the others keep receiving', async (t) => {
  const pki = testPki(t, UNIT);
  const gw = await startGateway(pki.config({ slowClientTimeoutMs: 1000 }), { logSink: () => {} });
  t.teardown(() => gw.close());
  const disconnected: string[] = [];
  gw.broker.aedes.on('clientDisconnect', (client) => disconnected.push(client.id));

  // The slow manager: a bare TLS connection that subscribes, then never reads again.
  const who = pki.issue('manager', 'mgr-slow');
  const slow = connect({
    host: gw.address.host,
    port: gw.address.port,
    ca: readFileSync(who.ca),
    cert: readFileSync(who.cert),
    key: readFileSync(who.key),
  });
  t.teardown(() => void slow.destroy());
  let received = Buffer.alloc(0);
  slow.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
  slow.on('error', () => {});
  await new Promise((resolve) => slow.once('secureConnect', resolve));
  slow.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'mgr-slow:test',
      keepalive: 0,
    }),
  );
  slow.write(
    mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: `rec/v1/${UNIT}/+/event`, qos: 0 }],
    }),
  );
  await waitFor(() => received.length >= 4 + 5, 30_000); // CONNACK (4 bytes) + SUBACK (5)
  t.is(received[4], 0x90, 'SUBACK');
  t.is(received[8], 0, 'subscription granted');
  slow.pause();

  const fast = await connectAs(gw.url, pki.issue('manager', 'mgr-fast'), 'mgr-fast:test');
  t.teardown(() => fast.end(true));
  let fastEvents = 0;
  fast.on('message', () => fastEvents++);
  await fast.subscribeAsync(`rec/v1/${UNIT}/+/event`, { qos: 0 });

  const device = await connectAs(gw.url, pki.issue('device', DEVICE), DEVICE);
  t.teardown(() => device.end(true));
  // 300 events of 60 KB: far more than the slow manager's socket buffers hold.
  const topic = deviceTopic('event', UNIT, DEVICE);
  const event = (seq: number) =>
    JSON.stringify({
      device: DEVICE,
      time: new Date().toISOString(),
      seq,
      kind: 'mark',
      body: { note: 'x'.repeat(60_000) },
    });
  const sends = 300;
  for (let seq = 0; seq < sends; seq++) await device.publishAsync(topic, event(seq), { qos: 0 });

  // aedes alone would wait 60 s (its default drainTimeout).
  await waitFor(() => disconnected.includes('mgr-slow:test'), 20_000);
  // Everything reached the manager that reads, then a new event too.
  await waitFor(() => fastEvents >= sends, 60_000);
  await device.publishAsync(topic, event(sends), { qos: 1 });
  await waitFor(() => fastEvents === sends + 1, 30_000);
  t.is(fastEvents, sends + 1, 'each event once, the last one after the slow manager was dropped');
  t.deepEqual(disconnected, ['mgr-slow:test'], 'only the slow manager was disconnected');
});
