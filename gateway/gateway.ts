/**
 * The station gateway as one thing to start and stop: broker + fleet monitor + the retained
 * `gateway/status` and `gateway/fleet` topics. `startGateway(config)` is what `recorder gateway run`
 * and `npm start` call.
 *
 * Events on `handle.events`:
 *   'reject'  RejectEvent   every refused handshake, identity, publish, subscription, payload, frame
 *   'alert'   AlertChange   an alert raised (active: true) or cleared (active: false)
 *   'fleet'   Fleet         every snapshot published
 *   'upload-alert' UploadAlert  the upload receiver refused or could not store an upload (issue 6)
 *   'stored'  StoredItem    an uploaded item was stored and receipted
 *   'profile' {device, version, by}  a pushed profile verified and retained (issue 7 item 4)
 */
import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Identity } from '../protocol/acl.ts';
import type { Availability } from '../protocol/schemas/availability.ts';
import { CRL_WARN_MS, type Fleet, type GatewayStatus, type RejectReason } from '../protocol/schemas/fleet.ts';
import type { Status } from '../protocol/schemas/status.ts';
import { deviceTopic, encodePayload, gatewayTopic, type TopicName } from '../protocol/topics.ts';
import { GatewayBroker } from './broker.ts';
import type { GatewayConfig } from './config.ts';
import { FleetMonitor } from './fleet-monitor.ts';
import { createLogger, type LogSink } from './log.ts';
import { UploadService } from './upload-service.ts';
import { ProfileService } from './profile-service.ts';
import { admittedCas } from './device-certificate.ts';
import type { Relay } from './relay.ts';
import { startUpstreamRelay, type UpstreamRelay, type UpstreamRelayOptions } from './relay-upstream.ts';

const DAY_MS = 86_400_000;

export interface GatewayHandle {
  address: { host: string; port: number };
  /** `mqtts://host:port` */
  url: string;
  events: EventEmitter;
  counters(): Record<RejectReason, number>;
  fleet(): Fleet;
  /** what the retained `gateway/status` says, as of now */
  status(): GatewayStatus;
  broker: GatewayBroker;
  /** the evidence store and upload receiver (issue 6) */
  uploads: UploadService;
  /** issue 7 item 4: the last profile pushed per device */
  profiles: ProfileService;
  /** the relay to the center when config.upstream is set (issue 6 item 4) */
  relay: Relay | null;
  close(): Promise<void>;
}

export interface StartGatewayOptions {
  /** where log records go; default JSON lines on stdout */
  logSink?: LogSink;
  /** test knobs of the upstream relay (timeouts, backoff, clock) */
  relay?: UpstreamRelayOptions;
}

export async function startGateway(
  config: GatewayConfig,
  options: StartGatewayOptions = {},
): Promise<GatewayHandle> {
  const log = createLogger('rec:gateway:broker', options.logSink);
  const cas = admittedCas(config);
  const events = new EventEmitter();
  const monitor = new FleetMonitor(config.unit, config.fleet);
  const startedAt = new Date().toISOString();
  let publishFleetSoon = () => {};
  const uploads: UploadService = new UploadService({
    unit: config.unit,
    holder: gatewayId(config.tls.cert),
    evidence: config.evidence,
    log: createLogger('rec:gateway:upload', options.logSink),
    // Called only for messages the broker delivers, so after `broker` below is assigned.
    publish: (topic, text): Promise<void> => broker.publishReply(topic, text),
    deviceKey: (device) => broker.evidenceKeyOf(device),
    deviceCertificate: (device) => broker.certificateOf(device),
    // Center role: relayed device certificates must chain to the CA of a unit it admits.
    ...(config.evidence.role === 'center' ? { trustedCas: cas } : {}),
    // Several units: their device ids must not meet in the store (it keys a device by its id).
    ...(config.units ? { deviceIdsNameUnit: true } : {}),
    onAlert: (device, alert) => {
      monitor.onUploadAlert(device, alert, Date.now());
      publishFleetSoon();
    },
    onStored: (item) => {
      monitor.onUploadStored(item.device);
    },
  });
  uploads.on('upload-alert', (alert) => events.emit('upload-alert', alert));
  uploads.on('stored', (item) => events.emit('stored', item));
  const onMessage = (who: Identity, name: TopicName, device: string, value: unknown, at: number) => {
    if (who.role !== 'device') return;
    if (name === 'status') monitor.onStatus(device, value as Status, at);
    else if (name === 'availability') monitor.onAvailability(device, value as Availability, at);
    else monitor.onSeen(device, at);
  };
  const profiles = new ProfileService({
    unit: config.unit,
    caCertPem: readFileSync(config.tls.ca, 'utf8'),
    ...(config.profilesDir ? { dir: config.profilesDir } : {}),
    log: createLogger('rec:gateway:profile', options.logSink),
  });
  const broker: GatewayBroker = await GatewayBroker.start({
    unit: config.unit,
    ...(config.units ? { units: config.units } : {}),
    host: config.listen.host,
    port: config.listen.port,
    tls: config.tls,
    maxFrameBytes: config.maxFrameBytes,
    slowClientTimeoutMs: config.slowClientTimeoutMs,
    log,
    onMessage,
    onDisconnect: (who) => {
      if (who.role === 'device') monitor.onDisconnect(who.id, Date.now());
      uploads
        .disconnected(who)
        .catch((error: Error) =>
          log('error', 'cannot close the incoming files of a client gone', { ...who, error: error.message }),
        );
    },
    onUpload: (who, topic, value): Promise<void> => uploads.handle(who, topic, value),
    profiles,
  }).catch(async (error: unknown) => {
    await uploads.close();
    throw error;
  });
  // Issue 7 item 4: the profiles kept on disk are retained again (aedes forgets them on restart).
  for (const [device, bytes] of profiles.all()) {
    await broker.publishRetained(deviceTopic('profile', config.unit, device), bytes, 1);
  }
  broker.on('reject', (event) => events.emit('reject', event));
  broker.on('profile', (event) => events.emit('profile', event));

  // With 5,000 devices the snapshot, its alerts and its encoding take ~10 ms each; yielding between
  // them lets the broker relay statuses in between instead of holding them for all three.
  const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));
  const publishFleet = async () => {
    const fleet = monitor.snapshot(Date.now());
    await yieldToIo();
    for (const change of monitor.alertChanges(fleet)) {
      log(change.active ? 'warn' : 'info', `alert ${change.active ? 'raised' : 'cleared'}: ${change.alert}`, {
        ...change,
      });
      events.emit('alert', change);
    }
    await yieldToIo();
    const encoded = encodePayload('fleet', fleet);
    if (encoded.ok) await broker.publishRetained(gatewayTopic('fleet', config.unit), encoded.text);
    else log('error', 'fleet snapshot fails its own schema', { problems: encoded.problems });
    events.emit('fleet', fleet);
  };
  // Issue 6 item 4: a station with an upstream relays to its center (started below).
  let upstream: UpstreamRelay | null = null;
  const relayStatus = (): GatewayStatus['relay'] => {
    if (!upstream) return undefined;
    const backlog = uploads.store.relayBacklog();
    return {
      ...upstream.state(),
      pendingItems: backlog.items,
      pendingBytes: backlog.bytes,
      oldestPending: backlog.oldestStoredAt,
      pendingJournals: backlog.journals,
    };
  };
  // A CRL past its nextUpdate makes OpenSSL refuse every client of its unit: said a month ahead,
  // once a day, as well as in every status.
  const crlWarned = new Map<string, number>();
  const warnExpiringCrls = (now: number) => {
    for (const { unit, nextUpdate } of broker.crls()) {
      const left = nextUpdate ? Date.parse(nextUpdate) - now : Infinity;
      if (left > CRL_WARN_MS || now - (crlWarned.get(unit) ?? -Infinity) < DAY_MS) continue;
      crlWarned.set(unit, now);
      log(
        left > 0 ? 'warn' : 'error',
        `the CRL of unit ${unit} ${left > 0 ? 'expires' : 'expired'} at ${nextUpdate}`,
        {
          unit,
          nextUpdate,
          hint: 'every client of that unit is refused once it has expired: re-sign it with `recorder ca crl --dir CA` (and copy it here)',
        },
      );
    }
  };
  const statusAt = (now: number): GatewayStatus => {
    const relay = relayStatus();
    return {
      unit: config.unit,
      time: new Date(now).toISOString(),
      startedAt,
      clients: broker.clients,
      uploads: { ...uploads.counters },
      crls: [...broker.crls()],
      ...(relay ? { relay } : {}),
      rejects: { ...broker.counters },
    };
  };
  const publishStatus = async () => {
    const now = Date.now();
    warnExpiringCrls(now);
    const status = statusAt(now);
    const encoded = encodePayload('gatewayStatus', status);
    if (encoded.ok) await broker.publishRetained(gatewayTopic('gatewayStatus', config.unit), encoded.text);
  };
  const guard = (what: string, f: () => Promise<void>) => () =>
    f().catch((error: Error) => log('error', `${what} failed`, { error: error.message }));
  const timers = [
    setInterval(guard('fleet snapshot', publishFleet), config.fleet.publishIntervalMs),
    setInterval(guard('gateway status', publishStatus), config.statusIntervalMs),
  ];
  publishFleetSoon = guard('fleet snapshot', publishFleet);
  await publishStatus();
  await publishFleet();
  try {
    const relayLog = createLogger('rec:gateway:relay', options.logSink);
    if (config.upstream) upstream = startUpstreamRelay(config, uploads.store, relayLog, options.relay);
  } catch (error) {
    for (const t of timers) clearInterval(t);
    await broker.close();
    await uploads.close();
    throw error;
  }
  // New evidence or new journal lines go to the center at once, not at the next idle round.
  uploads.on('stored', () => upstream?.relay.wake('news'));
  uploads.on('journal', () => upstream?.relay.wake('news'));
  const address = broker.address;
  let closing: Promise<void> | undefined;
  log('info', 'gateway listening', {
    unit: config.unit,
    ...(config.units ? { alsoAdmits: config.units.map((u) => u.unit) } : {}),
    ...address,
    maxFrameBytes: config.maxFrameBytes,
  });
  return {
    address,
    url: `mqtts://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`,
    events,
    counters: () => ({ ...broker.counters }),
    fleet: () => monitor.snapshot(Date.now()),
    status: () => statusAt(Date.now()),
    broker,
    uploads,
    profiles,
    relay: upstream?.relay ?? null,
    // Idempotent: a second close (a test's teardown after a restart) waits for the first.
    close: () =>
      (closing ??= (async () => {
        for (const t of timers) clearInterval(t);
        await upstream?.close();
        await broker.close();
        await uploads.close();
        log('info', 'gateway stopped');
      })()),
  };
}

/** The CN of the gateway's own certificate: the holder its receipts name. */
function gatewayId(certPath: string): string {
  try {
    const subject = new X509Certificate(readFileSync(certPath)).subject;
    return /^CN=(.+)$/m.exec(subject)?.[1] ?? 'gateway';
  } catch {
    return 'gateway'; // the broker reports an unreadable certificate itself
  }
}
