/**
 * The device's MQTT telemetry client (issue 5 item 3): retained status on change and every N
 * seconds, availability with a last will, events, and commands with replies. mqtt.js 5 speaking
 * MQTT 3.1.1 (aedes speaks nothing newer), TLS with the device certificate.
 *
 * - Every publication is checked against protocol/acl.ts and its schema before it is sent, so the
 *   client never sends what the gateway would refuse (a refused publish disconnects, and mqtt.js
 *   would resend a stored QoS 1 message on every reconnect: STACK-NOTES "MQTT").
 * - Reconnects with exponential backoff and full jitter ourselves (mqtt.js retries at a fixed period).
 * - Commands always get a reply with the same id, errors included (STYLE.md "MQTT").
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { mayPublish, type Identity } from '../protocol/acl.ts';
import { RecorderError, isRecorderError } from '../protocol/errors.ts';
import type { Command, CommandName, CommandResult } from '../protocol/schemas/command.ts';
import type { DeviceEvent } from '../protocol/schemas/event.ts';
import type { Profile } from '../protocol/schemas/profile.ts';
import { PROFILE_RESULT_NAME, profileResultId, type ProfileResultBody } from '../protocol/profile-push.ts';
import type { Status } from '../protocol/schemas/status.ts';
import {
  TOPICS,
  decodePayload,
  deviceTopic,
  encodePayload,
  type PayloadOf,
  type TopicName,
} from '../protocol/topics.ts';

export type CommandHandler = (
  command: Command,
) => Promise<Record<string, unknown> | void> | Record<string, unknown> | void;

/**
 * Issue 7 item 4: what the device did with a profile received on its retained `profile` topic.
 * The client answers it on `cmd/result` (id `profileResultId(bytes)`, name `profile`).
 */
export interface ProfileOutcome {
  ok: boolean;
  result: ProfileResultBody;
  error?: { code: string; message: string };
}

export interface TelemetryOptions {
  /** `mqtts://host:port` */
  url: string;
  unit: string;
  /** the device number: the certificate's CN */
  device: string;
  /** PEM text of the device certificate, its private key and the unit CA */
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer;
  /** the current status; called on every period and change check */
  getStatus: () => Status | Promise<Status>;
  /** publish the status at least this often (ms); default 60 000 */
  statusIntervalMs?: number;
  /** look for a changed status this often (ms); default 2 000 */
  changeCheckMs?: number;
  /** handlers for locate (buzz and blink) and sync-time; report-now is built in */
  handlers?: Partial<Record<CommandName, CommandHandler>>;
  /**
   * Issue 7 item 4: subscribe to this device's retained `profile` topic and hand every profile
   * received there to this function (the device's ProfileStore); its outcome is answered on
   * `cmd/result`. Omitted: the client does not subscribe (a device without a pinned unit CA).
   */
  onProfile?: (payload: Buffer) => Promise<ProfileOutcome>;
  /** reconnect backoff: first delay and ceiling (ms); defaults 1 000 and 60 000 */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** random source for jitter; default Math.random */
  random?: () => number;
  /** MQTT keepalive (s); default 30 */
  keepaliveSeconds?: number;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** Status fields compared to decide "changed": everything but the timestamp. */
function statusKey(status: Status): string {
  const { time: _time, ...rest } = status;
  return JSON.stringify(rest);
}

/**
 * Events: 'connect', 'close', 'command' (Command), 'error' is never emitted for network trouble
 * (the client keeps retrying; see 'close' and the log).
 */
export class TelemetryClient extends EventEmitter {
  private client?: MqttClient;
  private readonly identity: Identity;
  private attempt = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private timers: NodeJS.Timeout[] = [];
  private lastStatusKey?: string;
  private stopped = false;
  private publishingStatus?: Promise<void>;
  private profileWork: Promise<void> = Promise.resolve();
  readonly options: Required<
    Pick<
      TelemetryOptions,
      'statusIntervalMs' | 'changeCheckMs' | 'backoffMinMs' | 'backoffMaxMs' | 'keepaliveSeconds'
    >
  > &
    TelemetryOptions;

  constructor(options: TelemetryOptions) {
    super();
    this.options = {
      statusIntervalMs: 60_000,
      changeCheckMs: 2_000,
      backoffMinMs: 1_000,
      backoffMaxMs: 60_000,
      keepaliveSeconds: 30,
      ...options,
    };
    this.identity = { role: 'device', id: options.device, unit: options.unit };
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /**
   * The mqtt.js client once started, so uploads (protocol/upload-mqtt.ts) share this TLS connection
   * and its reconnects; 'connect' tells when to subscribe again (the session is clean).
   */
  get mqttClient(): MqttClient | undefined {
    return this.client;
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) {
    this.options.log?.(level, msg, { device: this.options.device, ...fields });
  }

  /** Starts connecting; resolves at once (the client keeps trying). Use `once('connect')` to wait. */
  start(): void {
    const o = this.options;
    const availability = deviceTopic('availability', o.unit, o.device);
    this.check('availability', availability, 'offline');
    this.client = mqtt.connect(o.url, {
      protocolVersion: 4,
      clientId: o.device,
      clean: true,
      keepalive: o.keepaliveSeconds,
      cert: o.cert,
      key: o.key,
      ca: o.ca,
      rejectUnauthorized: true,
      reconnectPeriod: 0, // ours: backoff with jitter
      connectTimeout: 15_000,
      will: { topic: availability, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.client.on('connect', () => {
      // mqtt.js leaves Nagle's algorithm on. Each upload item ends in small packets (done, the
      // next offer) sent behind unacknowledged chunks, and Nagle held each back until their ACK
      // came: one item at a time ran at 19 against 45 MiB/s for 1 MiB items (`npm run bench --
      // upload`, part 3). The gateway does the same on its side (gateway/broker.ts).
      (this.client?.stream as Socket | undefined)?.setNoDelay?.(true);
      void this.onConnect();
    });
    this.client.on('message', (topic, payload) => void this.onMessage(topic, payload));
    this.client.on('close', () => this.onClose());
    this.client.on('error', (error) => this.log('warn', 'mqtt error', { error: error.message }));
    this.timers.push(
      setInterval(() => void this.publishStatus(true).catch(() => {}), o.statusIntervalMs),
      setInterval(() => void this.publishStatus(false).catch(() => {}), o.changeCheckMs),
    );
  }

  private async onConnect(): Promise<void> {
    const o = this.options;
    this.attempt = 0;
    this.log('info', 'connected', { url: o.url });
    try {
      await this.client!.subscribeAsync(deviceTopic('cmd', o.unit, o.device), { qos: 1 });
      if (o.onProfile)
        await this.client!.subscribeAsync(deviceTopic('profile', o.unit, o.device), { qos: 1 });
      await this.publish('availability', 'online');
      this.lastStatusKey = undefined;
      await this.publishStatus(true);
      this.emit('connect');
    } catch (error) {
      this.log('warn', 'could not announce after connecting', { error: (error as Error).message });
    }
  }

  private onClose(): void {
    this.emit('close');
    if (this.stopped || this.reconnectTimer) return;
    const o = this.options;
    // Exponential backoff with full jitter: a station restart must not see every device at once.
    const ceiling = Math.min(o.backoffMaxMs, o.backoffMinMs * 2 ** Math.min(this.attempt, 20));
    const delay = Math.round(
      o.backoffMinMs / 2 + (o.random ?? Math.random)() * (ceiling - o.backoffMinMs / 2),
    );
    this.attempt++;
    this.log('info', 'disconnected; reconnecting', { inMs: delay, attempt: this.attempt });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.stopped) this.client?.reconnect();
    }, delay);
  }

  /** Validates topic and payload against the ACL and schema; throws instead of sending what would be refused. */
  private check<N extends TopicName>(name: N, topic: string, value: PayloadOf<N>): string {
    if (mayPublish(this.identity, topic) !== name) {
      throw new RecorderError('MQTT_TOPIC_REFUSED', `a device may not publish on ${topic}`, { topic });
    }
    const encoded = encodePayload(name, value);
    if (!encoded.ok) {
      const lines = encoded.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
      throw new RecorderError('MQTT_PAYLOAD_INVALID', `the ${name} payload is invalid: ${lines}`, {
        problems: encoded.problems,
      });
    }
    return encoded.text;
  }

  private async publish<N extends 'availability' | 'status' | 'event' | 'cmdResult'>(
    name: N,
    value: PayloadOf<N>,
  ): Promise<void> {
    const o = this.options;
    const topic = deviceTopic(name, o.unit, o.device);
    const text = this.check(name, topic, value);
    if (!this.client?.connected) {
      throw new RecorderError('MQTT_NOT_CONNECTED', `not connected to ${o.url}; ${name} not sent`);
    }
    const spec = TOPICS[name];
    await this.client.publishAsync(topic, text, { qos: spec.qos, retain: spec.retained });
  }

  /** Publishes the status when it changed (or always, with force). */
  async publishStatus(force = true): Promise<void> {
    if (!this.client?.connected) return;
    // One at a time: a slow getStatus must not pile up publications.
    if (this.publishingStatus) return this.publishingStatus;
    this.publishingStatus = (async () => {
      const status = await this.options.getStatus();
      const key = statusKey(status);
      if (!force && key === this.lastStatusKey) return;
      await this.publish('status', status);
      this.lastStatusKey = key;
    })().finally(() => (this.publishingStatus = undefined));
    return this.publishingStatus;
  }

  /** Tells the gateway about a journal entry worth telling now (not retained). */
  async publishEvent(event: DeviceEvent): Promise<void> {
    await this.publish('event', event);
  }

  private async onMessage(topic: string, payload: Buffer): Promise<void> {
    const o = this.options;
    if (o.onProfile && topic === deviceTopic('profile', o.unit, o.device)) {
      // One profile at a time, in arrival order (a retained one and a new push can meet on connect).
      this.profileWork = this.profileWork.then(() => this.onProfileMessage(payload));
      return this.profileWork;
    }
    if (topic !== deviceTopic('cmd', o.unit, o.device)) return;
    const decoded = decodePayload('cmd', payload);
    if (!decoded.ok) {
      // A reply needs the request id: answer when there is one, else only log.
      let id: unknown;
      try {
        id = (JSON.parse(payload.toString('utf8')) as { id?: unknown }).id;
      } catch {
        /* not JSON: no id */
      }
      this.log('warn', 'invalid command', { problems: decoded.problems });
      if (typeof id === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(id)) {
        await this.reply({
          id,
          name: 'invalid',
          ok: false,
          time: new Date().toISOString(),
          error: {
            code: 'MQTT_PAYLOAD_INVALID',
            message: decoded.problems.map((p) => `${p.path}: ${p.message}`).join('; '),
          },
        });
      }
      return;
    }
    const command = decoded.value;
    this.emit('command', command);
    const handler =
      this.options.handlers?.[command.name] ??
      (command.name === 'report-now' ? async () => void (await this.publishStatus(true)) : undefined);
    let result: CommandResult;
    if (!handler) {
      result = {
        id: command.id,
        name: command.name,
        ok: false,
        time: new Date().toISOString(),
        error: { code: 'CMD_UNSUPPORTED', message: `this device has no handler for ${command.name}` },
      };
    } else {
      try {
        const value = await handler(command);
        result = {
          id: command.id,
          name: command.name,
          ok: true,
          time: new Date().toISOString(),
          result: value ?? {},
        };
      } catch (error) {
        result = {
          id: command.id,
          name: command.name,
          ok: false,
          time: new Date().toISOString(),
          error: {
            code: isRecorderError(error) ? error.code : 'CMD_FAILED',
            message: String((error as Error).message ?? error).slice(0, 1024),
          },
        };
      }
    }
    await this.reply(result);
  }

  /** Applies a received profile through `onProfile` and always answers it (STYLE.md "MQTT"). */
  private async onProfileMessage(payload: Buffer): Promise<void> {
    let outcome: ProfileOutcome;
    try {
      outcome = await this.options.onProfile!(payload);
    } catch (error) {
      outcome = {
        ok: false,
        result: { outcome: 'refused' },
        error: {
          code: isRecorderError(error) ? error.code : 'CMD_FAILED',
          message: String((error as Error).message ?? error).slice(0, 1024),
        },
      };
    }
    this.log(outcome.ok ? 'info' : 'warn', `profile ${outcome.result.outcome}`, {
      version: outcome.result.version,
      code: outcome.error?.code,
    });
    this.emit('profile', outcome);
    await this.reply({
      id: profileResultId(payload),
      name: PROFILE_RESULT_NAME,
      ok: outcome.ok,
      time: new Date().toISOString(),
      result: { ...outcome.result },
      ...(outcome.error
        ? { error: { code: outcome.error.code.slice(0, 64), message: outcome.error.message.slice(0, 1024) } }
        : {}),
    });
  }

  private async reply(result: CommandResult): Promise<void> {
    try {
      await this.publish('cmdResult', result);
    } catch (error) {
      this.log('warn', 'could not reply to a command', { id: result.id, error: (error as Error).message });
    }
  }

  /** Says `offline` (retained) and disconnects cleanly; the last will covers the unclean case. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (!this.client) return;
    if (this.client.connected) {
      await this.publish('availability', 'offline').catch(() => {});
    }
    // A clean end waits for every QoS 1 message in flight; after a reconnect mqtt.js can hold one
    // whose acknowledgement never comes (uploads resend from their own state anyway), so the wait
    // is bounded and then the connection is closed hard (the last will is not sent after
    // `offline` was already published).
    let timer: NodeJS.Timeout | undefined;
    const clean = await Promise.race([
      this.client.endAsync().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 3000))),
    ]);
    clearTimeout(timer);
    if (!clean) await this.client.endAsync(true);
    // mqtt.js can keep a TLS socket of a reconnect open after a forced end; nothing may hold the
    // process once the recorder stopped.
    (this.client.stream as { destroy?: () => void } | undefined)?.destroy?.();
  }
}

/**
 * Telemetry options from a profile's `gateway` section (issue 5 item 3): reads the PEM files named
 * there. Undefined when the profile has no gateway section.
 */
export function telemetryOptionsFromProfile(
  profile: Pick<Profile, 'unit' | 'device' | 'gateway'>,
  getStatus: TelemetryOptions['getStatus'],
  extra: Partial<TelemetryOptions> = {},
): TelemetryOptions | undefined {
  const g = profile.gateway;
  if (!g) return undefined;
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch {
      throw new RecorderError(
        'FILE_NOT_FOUND',
        `cannot read ${what} ${path} named in the profile's gateway section`,
        {
          path,
        },
      );
    }
  };
  return {
    url: g.url,
    unit: profile.unit,
    device: profile.device,
    cert: read(g.cert, 'the device certificate'),
    key: read(g.key, 'the device TLS key'),
    ca: read(g.ca, 'the unit CA certificate'),
    getStatus,
    statusIntervalMs: g.statusIntervalSeconds * 1000,
    ...extra,
  };
}
