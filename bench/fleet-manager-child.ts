/**
 * The fleet bench's device manager, in its own process so that the thousands of device connections
 * do not delay its event loop: one mqtt.js TLS connection with the manager certificate, subscribed
 * with QoS 1 to every device's status. For each status stamped inside the measured window it records
 * `Date.now()` on receipt minus the status `time` (written by the device process with `Date.now()`
 * when it published: the same machine clock, millisecond resolution).
 *
 * IPC: ← `connect` → `ready` (subscribed); ← `window`; ← `stop` → `stopped` with every latency.
 */
import mqtt from 'mqtt';
import { HealthMonitor } from './fleet-health.ts';
import type { ManagerReply, ManagerRequest } from './fleet.ts';

const reply = (m: ManagerReply) => process.send!(m);
const health = new HealthMonitor();
const latencies: number[] = [];
let window = { startAt: Infinity, endAt: -Infinity };
let client: mqtt.MqttClient | undefined;

process.on('message', (m: ManagerRequest) => {
  if (m.type === 'connect') {
    void (async () => {
      client = await mqtt.connectAsync(m.url, {
        protocolVersion: 4,
        clientId: `${m.id}:bench`,
        ca: m.ca,
        cert: m.cert,
        key: m.key,
        reconnectPeriod: 0,
      });
      client.on('message', (topic, payload) => {
        const received = Date.now();
        // `+/status` also matches the gateway's own `gateway/status`: devices only.
        if (topic.endsWith('/gateway/status')) return;
        // Only the stamp is needed; the broker under test has already validated the payload.
        const at = payload.indexOf('"time":"');
        if (at < 0) return;
        const sentAt = Date.parse(payload.toString('latin1', at + 8, at + 8 + 24));
        if (sentAt >= window.startAt && sentAt < window.endAt) latencies.push(received - sentAt);
      });
      await client.subscribeAsync(m.filter, { qos: 1 });
      reply({ type: 'ready' });
    })();
  } else if (m.type === 'window') {
    window = { startAt: m.startAt, endAt: m.endAt };
    setTimeout(() => health.start(), Math.max(0, m.startAt - Date.now()));
  } else if (m.type === 'stop') {
    reply({ type: 'stopped', latencies, health: health.stop() });
    client?.end(true);
    process.disconnect();
    setTimeout(() => process.exit(0), 200).unref();
  }
});
process.on('disconnect', () => setTimeout(() => process.exit(0), 200).unref());
