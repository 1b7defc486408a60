/**
 * The relay's connection to the center (issue 6 item 4; R14: mutual TLS over the enforcement
 * network only): one mqtt.js client with the station's own gateway certificate, one
 * MqttUploadLink per device on it (the topics name the device), and the Relay that drives them.
 *
 * mqtt.js keeps QoS 1 publishes of a lost connection in memory and sends them after reconnecting
 * (STACK-NOTES "MQTT"); a relay round must not hang on that, so a publish while disconnected fails
 * at once, and one that gets no PUBACK in time fails with UPLOAD_TIMEOUT. The item stays, and the
 * next round (after a backoff) offers it again; the center resumes from what it holds.
 */
import { X509Certificate, createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { RecorderError } from '../protocol/errors.ts';
import { MqttUploadLink, type UploadMqttClient } from '../protocol/upload-mqtt.ts';
import type { GatewayConfig } from './config.ts';
import type { EvidenceStore } from './evidence-store.ts';
import type { Logger } from './log.ts';
import { Relay, type RelayFailure, type RelayOptions, type RelayRoundResult } from './relay.ts';

export interface UpstreamRelay {
  relay: Relay;
  client: MqttClient;
  /** for the gateway status: the connection, the last relay that went through, the last failure */
  state(): { connected: boolean; lastRelayedAt: string | null; lastError: string | null };
  close(): Promise<void>;
}

export interface UpstreamRelayOptions {
  /** test knobs passed to the Relay (timeouts, backoff, clock) */
  relay?: Partial<Omit<RelayOptions, 'store' | 'linkFor' | 'centerReceiptKey'>>;
  /** mqtt.js reconnect period. Default 5000 ms. */
  reconnectPeriodMs?: number;
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    throw new RecorderError('FILE_NOT_FOUND', `cannot read ${what} ${path} (upstream section)`, { path });
  }
}

/** Connects to the center and starts relaying; never throws for an unreachable center (it retries). */
export function startUpstreamRelay(
  config: GatewayConfig,
  store: EvidenceStore,
  log: Logger,
  options: UpstreamRelayOptions = {},
): UpstreamRelay {
  const upstream = config.upstream;
  if (!upstream)
    throw new RecorderError('GATEWAY_CONFIG_INVALID', 'no upstream section: nothing to relay to');
  const centerReceiptKey = createPublicKey(readFile(upstream.receiptKey, "the center's receipt key"));
  const cert = readFile(upstream.cert, "the station's gateway certificate");
  // The center's broker takes only client ids `<certificate id>` or `<certificate id>:…`.
  const certId = /^CN=(.+)$/m.exec(new X509Certificate(cert).subject)?.[1] ?? 'gateway';
  const client = mqtt.connect(upstream.url, {
    protocolVersion: 4,
    clientId: `${certId}:relay-${randomBytes(4).toString('hex')}`,
    cert,
    key: readFile(upstream.key, "the station's gateway key"),
    ca: readFile(upstream.ca, "the center's CA"),
    reconnectPeriod: options.reconnectPeriodMs ?? 5000,
    connectTimeout: 10_000,
    queueQoSZero: false,
  });
  const replyTimeoutMs = options.relay?.replyTimeoutMs ?? 15_000;
  let wasConnected = false;
  client.on('connect', () => {
    // Nagle's algorithm off, as on the recorder (device/telemetry.ts): it held each item's small
    // done and offer packets back behind the chunks until their ACK came.
    (client.stream as Socket | undefined)?.setNoDelay?.(true);
    log('info', 'relay connected to the center', { url: upstream.url });
    wasConnected = true;
    relay.wake();
  });
  client.on('close', () => {
    if (wasConnected) log('warn', 'relay lost the center; retrying', { url: upstream.url });
    wasConnected = false;
  });
  client.on('error', (error) => log('warn', 'relay connection error', { error: error.message }));

  // The client seen by the links: publishes fail fast instead of queueing for a later connection.
  const guarded: UploadMqttClient = {
    publish: (topic, message, opts, callback) => {
      if (!client.connected) {
        callback(new RecorderError('UPLOAD_TIMEOUT', 'the center is not connected'));
        return;
      }
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        callback(
          new RecorderError('UPLOAD_TIMEOUT', `no PUBACK from the center within ${replyTimeoutMs} ms`),
        );
      }, replyTimeoutMs);
      client.publish(topic, message, opts, (error) => {
        clearTimeout(timer);
        if (!settled) callback(error);
      });
    },
    subscribe: (topics, opts, callback) => client.subscribe(topics, opts, callback as never),
    unsubscribe: (topics, callback) => client.unsubscribe(topics, callback as never),
    on: (event, listener) => client.on(event, listener),
    removeListener: (event, listener) => client.removeListener(event, listener),
  };

  const relay = new Relay({
    store,
    centerReceiptKey,
    purgeAfterDays: upstream.purgeAfterDays,
    ...options.relay,
    linkFor: async (device) => {
      if (!client.connected) throw new RecorderError('UPLOAD_TIMEOUT', 'the center is not connected');
      const link = new MqttUploadLink({ client: guarded, unit: config.unit, device });
      await link.start();
      return link;
    },
  });
  relay.on('relayed', (e: { device: string; id: string }) =>
    log('info', 'relayed to the center', { device: e.device, id: e.id }),
  );
  relay.on('purged', (e: { device: string; id: string }) =>
    log('info', 'purged after relay', { device: e.device, id: e.id }),
  );
  // For the gateway status: the last relay that went through, and the last round's first failure
  // (or a round that failed as a whole, which ends in an alert and no round result).
  let lastRelayedAt: string | null = null;
  let lastError: string | null = null;
  const now = () => (options.relay?.now ?? (() => new Date()))().toISOString();
  const described = (f: RelayFailure) => `${f.code}: ${f.message}`.slice(0, 500);
  relay.on('alert', (a: RelayFailure) => {
    log('warn', `relay: ${a.message}`, { ...a });
    lastError = described(a);
  });
  relay.on('relayed', () => (lastRelayedAt = now()));
  relay.on('journal', () => (lastRelayedAt = now()));
  relay.on('round', (r: RelayRoundResult) => (lastError = r.failed[0] ? described(r.failed[0]) : null));
  relay.start();
  return {
    relay,
    client,
    state: () => ({ connected: client.connected, lastRelayedAt, lastError }),
    close: async () => {
      await relay.stop();
      await client.endAsync(true);
    },
  };
}
