/**
 * One slice of the fleet bench's simulated devices, lean: each device is a bare `node:tls`
 * connection with its own certificate (the identity model of bench/fleet-devices-child.ts: one
 * certificate per device over a shared key, client id = certificate id) speaking only the MQTT 3.1.1
 * the bench needs, with packets encoded by mqtt-packet: CONNECT (clean session, keep-alive 60 s),
 * retained QoS 1 PUBLISH of a valid status every `intervalMs` at a random phase, PUBACKs counted,
 * PINGREQ when a connection has been silent for half its keep-alive. mqtt.js per device cost the
 * generator more CPU and garbage than the broker under test spent (its event loop stalled up to
 * 455 ms), which made the tail the generator's; this keeps one small object per device.
 *
 * The status `time` is `Date.now()` taken right before the payload is built and written, as before.
 *
 * IPC: as bench/fleet-devices-child.ts (`connect` → `connected`; `run`; `stop` → `stopped`).
 */
import { createSecureContext, connect, type SecureContext, type TLSSocket } from 'node:tls';
import mqttPacket from 'mqtt-packet';
import { deviceTopic } from '../protocol/topics.ts';
import { makeStatus } from '../test/helpers/mqtt.ts';
import { HealthMonitor } from './fleet-health.ts';
import type { DevicesReply, DevicesRequest } from './fleet.ts';

const KEEPALIVE_S = 60;
const reply = (m: DevicesReply) => process.send!(m);
const health = new HealthMonitor();

/** MQTT 3.1.1 §3 control packet types (the high nibble of the first byte) this client reads. */
const CONNACK = 2;
const PUBACK = 4;
const PINGRESP = 13;
const PINGREQ = Buffer.from([0xc0, 0x00]); // §3.12

interface Device {
  id: string;
  socket: TLSSocket;
  /** bytes received and not yet a whole packet */
  pending: Buffer | null;
  messageId: number;
  lastWrite: number;
  onConnack?: (returnCode: number) => void;
}

const devices: Device[] = [];
const timers: NodeJS.Timeout[] = [];
let sent = 0;
let acked = 0;
let failed = 0;

/** Splits received bytes into packets (fixed header §2.2: type byte, remaining length base-128). */
function onData(d: Device, chunk: Buffer): void {
  let buf = d.pending ? Buffer.concat([d.pending, chunk]) : chunk;
  for (;;) {
    if (buf.length < 2) break;
    let length = 0;
    let multiplier = 1;
    let i = 1;
    for (; i < 5 && i < buf.length; i++) {
      length += (buf[i]! & 0x7f) * multiplier;
      multiplier *= 128;
      if ((buf[i]! & 0x80) === 0) break;
    }
    if (i >= buf.length || buf[i]! & 0x80) break; // length bytes incomplete
    const end = i + 1 + length;
    if (buf.length < end) break;
    const type = buf[0]! >> 4;
    if (type === CONNACK) d.onConnack?.(buf[i + 2] ?? 255);
    else if (type === PUBACK) acked++;
    else if (type !== PINGRESP) d.socket.destroy(new Error(`unexpected packet type ${type}`));
    buf = buf.subarray(end);
  }
  d.pending = buf.length > 0 ? buf : null;
}

function connectOne(id: string, url: URL, context: SecureContext): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port), secureContext: context });
    const d: Device = { id, socket, pending: null, messageId: 0, lastWrite: Date.now() };
    let settled = false;
    const fail = () => {
      if (settled) return; // 'error' is followed by 'close'
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      failed++;
      resolve();
    };
    const timer = setTimeout(fail, 120_000);
    socket.once('error', fail);
    socket.once('close', fail);
    socket.on('data', (chunk: Buffer) => onData(d, chunk));
    socket.once('secureConnect', () => {
      socket.setNoDelay(true);
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          clientId: d.id,
          keepalive: KEEPALIVE_S,
        }),
      );
    });
    d.onConnack = (returnCode) => {
      d.onConnack = undefined;
      if (settled) return;
      clearTimeout(timer);
      socket.off('error', fail);
      socket.off('close', fail);
      if (returnCode !== 0) return fail();
      settled = true;
      socket.on('error', () => socket.destroy());
      devices.push(d);
      resolve();
    };
  });
}

async function connectAll(m: Extract<DevicesRequest, { type: 'connect' }>): Promise<void> {
  const t0 = Date.now();
  const url = new URL(m.url);
  // A few handshakes at a time per process: TLS handshakes are the expensive part.
  for (let i = 0; i < m.devices.length; i += m.batch) {
    await Promise.all(
      m.devices.slice(i, i + m.batch).map(({ id, cert }) => {
        const context = createSecureContext({ ca: m.ca, cert, key: m.key });
        return connectOne(id, url, context);
      }),
    );
  }
  reply({ type: 'connected', connected: devices.length, failed, ms: Date.now() - t0 });
}

function publish(d: Device, topic: string, m: Extract<DevicesRequest, { type: 'run' }>): void {
  const now = Date.now();
  if (now >= m.startAt && now < m.endAt) sent++;
  const status = makeStatus(d.id, {
    time: new Date(now).toISOString(),
    profile: { id: 'bench', version: 1 },
  });
  d.messageId = (d.messageId % 0xffff) + 1;
  d.socket.write(
    mqttPacket.generate({
      cmd: 'publish',
      topic,
      payload: JSON.stringify(status),
      qos: 1,
      retain: true,
      dup: false,
      messageId: d.messageId,
    }),
  );
  d.lastWrite = now;
}

function run(m: Extract<DevicesRequest, { type: 'run' }>): void {
  // Health over exactly the measured window, as every bench process (bench/fleet-health.ts).
  setTimeout(() => health.start(), Math.max(0, m.startAt - Date.now()));
  for (const d of devices) {
    const topic = deviceTopic('status', m.unit, d.id);
    timers.push(
      setTimeout(() => {
        publish(d, topic, m);
        timers.push(setInterval(() => publish(d, topic, m), m.intervalMs));
      }, Math.random() * m.intervalMs),
    );
  }
}

// §3.1.2.10: the broker drops a client silent for 1.5 × keep-alive; ping the ones silent for half.
setInterval(() => {
  const now = Date.now();
  for (const d of devices) {
    if (now - d.lastWrite < (KEEPALIVE_S * 1000) / 2) continue;
    d.socket.write(PINGREQ);
    d.lastWrite = now;
  }
}, 5000).unref();

process.on('message', (m: DevicesRequest) => {
  if (m.type === 'connect') void connectAll(m);
  else if (m.type === 'run') run(m);
  else if (m.type === 'stop') {
    for (const t of timers) clearTimeout(t);
    reply({ type: 'stopped', sent, acked, health: health.stop() });
    for (const d of devices) d.socket.destroy();
    process.disconnect();
    setTimeout(() => process.exit(0), 200).unref();
  }
});
// The bench died or was interrupted: do not linger with thousands of connections.
process.on('disconnect', () => setTimeout(() => process.exit(0), 200).unref());
