/**
 * One slice of the fleet bench's simulated devices with `--generator mqttjs` (the lean one is
 * bench/fleet-devices-lean-child.ts); bench/fleet.ts forks several of these. Each
 * device has its own mqtt.js TLS connection and certificate and publishes a retained QoS 1 status
 * every `intervalMs` at a random phase. The status `time` is `Date.now()` at the moment of publishing:
 * the manager process (bench/fleet-manager-child.ts) subtracts it from its own `Date.now()` on
 * receipt, on the same machine clock.
 *
 * IPC: ← `connect` → `connected`; ← `run` (publishing starts at once; statuses stamped inside the
 * window are counted) ; ← `stop` → `stopped` (then this process exits).
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Status } from '../protocol/schemas/status.ts';
import { deviceTopic } from '../protocol/topics.ts';
import type { DevicesReply, DevicesRequest } from './fleet.ts';
import { makeStatus } from '../test/helpers/mqtt.ts';
import { HealthMonitor } from './fleet-health.ts';

const reply = (m: DevicesReply) => process.send!(m);
const clients: MqttClient[] = [];
const timers: NodeJS.Timeout[] = [];
const health = new HealthMonitor();
let sent = 0;
let failed = 0;

function statusOf(device: string, now: number): Status {
  return makeStatus(device, { time: new Date(now).toISOString(), profile: { id: 'bench', version: 1 } });
}

async function connectAll(m: Extract<DevicesRequest, { type: 'connect' }>): Promise<void> {
  const t0 = Date.now();
  // A few handshakes at a time per process: TLS handshakes are the expensive part.
  for (let i = 0; i < m.devices.length; i += m.batch) {
    await Promise.all(
      m.devices.slice(i, i + m.batch).map(({ id, cert }) =>
        mqtt
          .connectAsync(m.url, {
            protocolVersion: 4,
            clientId: id,
            ca: m.ca,
            cert,
            key: m.key,
            keepalive: 60,
            reconnectPeriod: 0,
            connectTimeout: 120_000,
          })
          .then((c) => void clients.push(c))
          .catch(() => void failed++),
      ),
    );
  }
  reply({ type: 'connected', connected: clients.length, failed, ms: Date.now() - t0 });
}

function run(m: Extract<DevicesRequest, { type: 'run' }>): void {
  // Health over exactly the measured window, as every bench process (bench/fleet-health.ts).
  setTimeout(() => health.start(), Math.max(0, m.startAt - Date.now()));
  for (const c of clients) {
    const id = c.options.clientId!;
    const topic = deviceTopic('status', m.unit, id);
    const publish = () => {
      const now = Date.now();
      if (now >= m.startAt && now < m.endAt) sent++;
      c.publish(topic, JSON.stringify(statusOf(id, now)), { qos: 1, retain: true });
    };
    timers.push(
      setTimeout(() => {
        publish();
        timers.push(setInterval(publish, m.intervalMs));
      }, Math.random() * m.intervalMs),
    );
  }
}

process.on('message', (m: DevicesRequest) => {
  if (m.type === 'connect') void connectAll(m);
  else if (m.type === 'run') run(m);
  else if (m.type === 'stop') {
    for (const t of timers) clearTimeout(t);
    reply({ type: 'stopped', sent, health: health.stop() });
    for (const c of clients) c.end(true);
    process.disconnect();
    setTimeout(() => process.exit(0), 200).unref();
  }
});
// The bench died or was interrupted: do not linger with thousands of connections.
process.on('disconnect', () => setTimeout(() => process.exit(0), 200).unref());
