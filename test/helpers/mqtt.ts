/** MQTT test helpers: connect with a test identity, build valid statuses, wait for conditions. */
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Status } from '../../protocol/schemas/status.ts';
import type { TestIdentity } from './pki.ts';

export { waitFor } from './wait.ts';

export function tlsOptions(who: TestIdentity): { cert: Buffer; key: Buffer; ca: Buffer } {
  return { cert: readFileSync(who.cert), key: readFileSync(who.key), ca: readFileSync(who.ca) };
}

/** Connects once (no retries); rejects when the connection is refused or closed before CONNACK. */
export function connectAs(
  url: string,
  who: TestIdentity,
  clientId: string,
  extra: IClientOptions = {},
): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    protocolVersion: 4,
    clientId,
    reconnectPeriod: 0,
    // Generous: a loaded 2-core CI machine has taken over 10 s for a TLS handshake plus CONNACK.
    connectTimeout: 30_000,
    ...tlsOptions(who),
    ...extra,
  });
  return new Promise((resolve, reject) => {
    const fail = (error?: Error) => {
      client.end(true);
      reject(error ?? new Error('connection closed before CONNACK'));
    };
    client.once('error', fail);
    client.once('close', () => fail());
    client.once('connect', () => {
      client.off('error', fail);
      client.removeAllListeners('close');
      resolve(client);
    });
  });
}

export function makeStatus(device: string, patch: Partial<Status> = {}): Status {
  return {
    device,
    time: new Date().toISOString(),
    state: 'standby',
    battery: { percent: 80, charging: false, minutesLeft: 300 },
    storage: { freeBytes: 32_000_000_000, totalBytes: 64_000_000_000, minutesLeft: 900 },
    gnss: { fix: true, lat: '28.2278300', lon: '112.9388600' },
    officer: 'O-1001',
    uploads: { pending: 0 },
    clock: { source: 'gnss', offsetMs: 0 },
    profile: { id: 'hn-body', version: 1 },
    firmware: '0.1.0',
    ...patch,
  };
}

/** Resolves when the client is closed by the other side (or rejects after timeoutMs). */
export function closedBy(client: MqttClient, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (client.disconnected || !client.connected) return resolve();
    const timer = setTimeout(() => reject(new Error('the connection stayed open')), timeoutMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
