/**
 * The station gateway as one thing to start and stop: broker + fleet monitor + the retained
 * `gateway/status` and `gateway/fleet` topics. `startGateway(config)` is what `recorder gateway run`
 * and `npm start` call.
 *
 * Events on `handle.events`:
 *   'reject'  RejectEvent   every refused handshake, identity, publish, subscription, payload, frame
 *   'alert'   AlertChange   an alert raised (active: true) or cleared (active: false)
 *   'fleet'   Fleet         every snapshot published
 */
import { EventEmitter } from 'node:events';
import type { Identity } from '../protocol/acl.ts';
import type { Availability } from '../protocol/schemas/availability.ts';
import type { Fleet, GatewayStatus, RejectReason } from '../protocol/schemas/fleet.ts';
import type { Status } from '../protocol/schemas/status.ts';
import { encodePayload, gatewayTopic, type TopicName } from '../protocol/topics.ts';
import { GatewayBroker } from './broker.ts';
import type { GatewayConfig } from './config.ts';
import { FleetMonitor } from './fleet-monitor.ts';
import { createLogger, type LogSink } from './log.ts';

export interface GatewayHandle {
  address: { host: string; port: number };
  /** `mqtts://host:port` */
  url: string;
  events: EventEmitter;
  counters(): Record<RejectReason, number>;
  fleet(): Fleet;
  broker: GatewayBroker;
  close(): Promise<void>;
}

export interface StartGatewayOptions {
  /** where log records go; default JSON lines on stdout */
  logSink?: LogSink;
}

export async function startGateway(
  config: GatewayConfig,
  options: StartGatewayOptions = {},
): Promise<GatewayHandle> {
  const log = createLogger('rec:gateway:broker', options.logSink);
  const events = new EventEmitter();
  const monitor = new FleetMonitor(config.unit, config.fleet);
  const startedAt = new Date().toISOString();
  const onMessage = (who: Identity, name: TopicName, device: string, value: unknown, at: number) => {
    if (who.role !== 'device') return;
    if (name === 'status') monitor.onStatus(device, value as Status, at);
    else if (name === 'availability') monitor.onAvailability(device, value as Availability, at);
    else monitor.onSeen(device, at);
  };
  const broker = await GatewayBroker.start({
    unit: config.unit,
    host: config.listen.host,
    port: config.listen.port,
    tls: config.tls,
    maxFrameBytes: config.maxFrameBytes,
    log,
    onMessage,
    onDisconnect: (who) => {
      if (who.role === 'device') monitor.onDisconnect(who.id, Date.now());
    },
  });
  broker.on('reject', (event) => events.emit('reject', event));

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
  const publishStatus = async () => {
    const status: GatewayStatus = {
      unit: config.unit,
      time: new Date().toISOString(),
      startedAt,
      clients: broker.clients,
      rejects: { ...broker.counters },
    };
    const encoded = encodePayload('gatewayStatus', status);
    if (encoded.ok) await broker.publishRetained(gatewayTopic('gatewayStatus', config.unit), encoded.text);
  };
  const guard = (what: string, f: () => Promise<void>) => () =>
    f().catch((error: Error) => log('error', `${what} failed`, { error: error.message }));
  const timers = [
    setInterval(guard('fleet snapshot', publishFleet), config.fleet.publishIntervalMs),
    setInterval(guard('gateway status', publishStatus), config.statusIntervalMs),
  ];
  await publishStatus();
  await publishFleet();
  const address = broker.address;
  log('info', 'gateway listening', { unit: config.unit, ...address, maxFrameBytes: config.maxFrameBytes });
  return {
    address,
    url: `mqtts://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`,
    events,
    counters: () => ({ ...broker.counters }),
    fleet: () => monitor.snapshot(Date.now()),
    broker,
    close: async () => {
      for (const t of timers) clearInterval(t);
      await broker.close();
      log('info', 'gateway stopped');
    },
  };
}
