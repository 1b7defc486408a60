/**
 * The upload protocol over MQTT (issue 6; DESIGN.md "MQTT: topics and payloads", "Uploads"): the
 * sending side's UploadLink on an MQTT client it is given. protocol/ does no I/O of its own: the
 * device passes the client of its telemetry connection, a station's relay the client it keeps to
 * its center.
 *
 * - offers, done and journal batches are JSON, QoS 1, validated before publishing (a refused publish
 *   disconnects and mqtt.js would resend it forever: STACK-NOTES "MQTT");
 * - chunks are raw bytes, QoS 1, on `upload/data/{id}/{offset}`; `sendChunk` resolves on PUBACK,
 *   which the gateway sends only once the chunk is written to its incoming file. Given `direct`
 *   (the mqtt.js client itself), chunks skip mqtt.js's `publish`: see DirectMqttClient;
 * - replies (`upload/state`, `upload/receipt`, `upload/journal-state` of this device) are decoded
 *   and validated with decodePayload and emitted as 'state', 'receipt', 'journal-state'. An invalid
 *   reply is dropped with an 'invalid' event ({topic, problems}).
 */
import { EventEmitter } from 'node:events';
import mqttPacket from 'mqtt-packet';
import { RecorderError } from './errors.ts';
import {
  decodePayload,
  deviceTopic,
  encodePayload,
  parseTopic,
  uploadDataTopic,
  type TopicName,
} from './topics.ts';
import type { Done, JournalBatch, Offer, UploadLink } from './upload.ts';
import type { SchemaProblem } from './schemas/validate.ts';

/** The part of an mqtt.js MqttClient the link uses (structural, so tests and relays may pass their own). */
export interface UploadMqttClient {
  publish(
    topic: string,
    message: string | Buffer,
    opts: { qos: 0 | 1; retain?: boolean },
    callback: (error?: Error) => void,
  ): unknown;
  subscribe(
    topics: string[],
    opts: { qos: 0 | 1 },
    callback: (error: Error | null, granted?: { topic: string; qos: number }[]) => void,
  ): unknown;
  unsubscribe(topics: string[], callback: (error?: Error) => void): unknown;
  on(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  removeListener(event: 'message', listener: (topic: string, payload: Buffer) => void): unknown;
  removeListener(event: 'close', listener: () => void): unknown;
}

/**
 * The parts of an mqtt.js MqttClient that the direct data path uses.
 *
 * mqtt.js copies every QoS 1 payload for its resend store (rfdc), so a 256 MiB item cost the
 * recorder 256 MiB of copies and the garbage collections after them: in `npm run bench -- upload`
 * the recorder spent 8.2 s of CPU per GiB sent through `publish` and 3.3–4.0 s written directly
 * (2026-11-23, docs/performance.md). So the link writes each data chunk as one QoS 1 PUBLISH with mqtt-packet (the
 * encoder mqtt.js itself uses) onto the client's own connection, and takes its message id from the
 * client's own id provider, so no id is ever in flight twice on the connection. The broker sees an
 * ordinary PUBLISH; the PUBACK comes back through the client ('packetreceive'), which ignores an
 * acknowledgement it did not ask for. Nothing is resent by mqtt.js after a reconnect, which the
 * link never relied on: a lost connection fails every chunk in flight and the sender offers again.
 */
export interface DirectMqttClient {
  connected: boolean;
  stream: NodeJS.WritableStream & { writable: boolean };
  messageIdProvider: { allocate(): number | null; deallocate(id: number): void };
  on(event: 'packetreceive', listener: (packet: { cmd: string; messageId?: number }) => void): unknown;
  removeListener(
    event: 'packetreceive',
    listener: (packet: { cmd: string; messageId?: number }) => void,
  ): unknown;
}

export interface MqttUploadLinkOptions {
  client: UploadMqttClient;
  /**
   * The mqtt.js client under `client`: data chunks are then written directly on its connection
   * (DirectMqttClient). Without it every message goes through `client.publish`.
   */
  direct?: DirectMqttClient;
  unit: string;
  /** the device whose items travel: the device itself, or the device a relay sends for */
  device: string;
  /**
   * Largest JSON payload of a journal batch; a longer batch is cut to fewer lines (at least one),
   * which the protocol allows: the station answers with its head and the sender goes on from there.
   * Keep it under the gateway's frame limit (maxFrameBytes, default 320 KiB). Default 256 KiB.
   */
  maxJournalBytes?: number;
}

/**
 * Bytes an upload/data PUBLISH adds to its chunk: fixed header (≤ 5), topic length (2), the topic
 * (`rec/v1/` + unit ≤ 64 + device ≤ 64 + `/upload/data/` + id ≤ 128 + offset ≤ 16 + slashes) and the
 * packet id (2), rounded up. A chunk fits the gateway when chunkBytes + this ≤ maxFrameBytes.
 */
export const UPLOAD_FRAME_OVERHEAD = 512;

/** The largest chunk a gateway with this frame limit accepts. */
export function maxChunkBytes(maxFrameBytes: number): number {
  return maxFrameBytes - UPLOAD_FRAME_OVERHEAD;
}

export interface InvalidReply {
  topic: string;
  problems: SchemaProblem[];
}

const REPLIES = {
  uploadState: 'state',
  uploadReceipt: 'receipt',
  uploadJournalState: 'journal-state',
} as const satisfies Partial<Record<TopicName, string>>;
type ReplyTopic = keyof typeof REPLIES;

export class MqttUploadLink extends EventEmitter implements UploadLink {
  private readonly replyTopics: Map<string, ReplyTopic>;
  private started = false;
  private readonly onMessage = (topic: string, payload: Buffer): void => this.receive(topic, payload);
  /** direct data chunks waiting for their PUBACK, by message id */
  private readonly acks = new Map<number, () => void>();
  private readonly onPacket = (packet: { cmd: string; messageId?: number }): void => {
    if (packet.cmd === 'puback' && packet.messageId !== undefined) this.acks.get(packet.messageId)?.();
  };
  /** publishes waiting for their PUBACK */
  private readonly pending = new Set<(error: Error) => void>();
  /**
   * A lost connection fails every publish in flight at once: mqtt.js would resend them after a
   * reconnect, but the sender cannot tell when (or whether) that happens, so it offers again and
   * the gateway answers with what it holds (duplicates are harmless: DESIGN.md "Uploads").
   */
  private readonly onClose = (): void => {
    const error = new RecorderError('MQTT_NOT_CONNECTED', 'the connection to the gateway closed');
    for (const fail of [...this.pending]) fail(error);
  };

  constructor(private readonly options: MqttUploadLinkOptions) {
    super();
    const { unit, device } = options;
    this.replyTopics = new Map(
      (Object.keys(REPLIES) as ReplyTopic[]).map((name) => [deviceTopic(name, unit, device), name]),
    );
  }

  /** Subscribes to this device's three reply topics; resolves when the gateway granted all three. */
  async start(): Promise<void> {
    if (!this.started) {
      this.options.client.on('message', this.onMessage);
      this.options.client.on('close', this.onClose);
      this.options.direct?.on('packetreceive', this.onPacket);
      this.started = true;
    }
    const topics = [...this.replyTopics.keys()];
    await new Promise<void>((resolve, reject) =>
      this.options.client.subscribe(topics, { qos: 1 }, (error, granted) => {
        if (error) return reject(error);
        const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
        if (refused.length) {
          return reject(
            new RecorderError(
              'UPLOAD_LINK_REFUSED',
              `the gateway refused the subscription to ${refused.join(', ')}`,
              {
                refused,
              },
            ),
          );
        }
        resolve();
      }),
    );
  }

  /** Stops listening; the unsubscribe itself is best effort (the connection may be gone). */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.options.client.removeListener('message', this.onMessage);
    this.options.client.removeListener('close', this.onClose);
    this.options.direct?.removeListener('packetreceive', this.onPacket);
    await new Promise<void>((resolve) =>
      this.options.client.unsubscribe([...this.replyTopics.keys()], () => resolve()),
    );
  }

  sendOffer(offer: Offer): Promise<void> {
    return this.publishJson('uploadOffer', offer);
  }

  sendChunk(id: string, offset: number, data: Buffer): Promise<void> {
    const { unit, device, direct } = this.options;
    const topic = uploadDataTopic(unit, device, id, offset);
    return direct && this.started ? this.writeDirect(direct, topic, data) : this.publish(topic, data);
  }

  /** One QoS 1 PUBLISH written on the connection; resolves on its PUBACK (see DirectMqttClient). */
  private writeDirect(direct: DirectMqttClient, topic: string, data: Buffer): Promise<void> {
    if (!direct.connected || !direct.stream.writable)
      return Promise.reject(new RecorderError('MQTT_NOT_CONNECTED', 'not connected to the gateway'));
    const messageId = direct.messageIdProvider.allocate();
    if (messageId === null)
      return Promise.reject(new RecorderError('MQTT_NOT_CONNECTED', 'no free MQTT message id'));
    return new Promise((resolve, reject) => {
      // Settled once, by its PUBACK (no error) or by a lost connection (onClose, with one).
      const settle = (error?: Error) => {
        if (!this.acks.delete(messageId)) return;
        this.pending.delete(settle);
        direct.messageIdProvider.deallocate(messageId);
        if (error) reject(error);
        else resolve();
      };
      this.acks.set(messageId, settle);
      this.pending.add(settle);
      mqttPacket.writeToStream(
        { cmd: 'publish', topic, payload: data, qos: 1, messageId, retain: false, dup: false },
        direct.stream,
      );
    });
  }

  sendDone(done: Done): Promise<void> {
    return this.publishJson('uploadDone', done);
  }

  sendJournal(batch: JournalBatch): Promise<void> {
    const limit = this.options.maxJournalBytes ?? 256 * 1024;
    let lines = batch.lines;
    let bytes = Buffer.byteLength(JSON.stringify(batch));
    while (bytes > limit && lines.length > 1) {
      // Drop from the end: each line costs its JSON-escaped length plus a comma.
      const last = lines.at(-1)!;
      bytes -= Buffer.byteLength(JSON.stringify(last)) + 1;
      lines = lines.slice(0, -1);
    }
    // The device certificate goes along: a center that does not know the device yet checks the
    // lines with the key it binds (a station relaying a device whose items have not gone yet).
    return this.publishJson('uploadJournal', {
      from: batch.from,
      lines,
      ...(batch.deviceCert ? { deviceCert: batch.deviceCert } : {}),
    });
  }

  private publishJson(
    name: 'uploadOffer' | 'uploadDone' | 'uploadJournal',
    value: Offer | Done | JournalBatch,
  ) {
    const encoded = encodePayload(name, value as never);
    if (!encoded.ok) {
      return Promise.reject(
        new RecorderError('UPLOAD_BAD_MESSAGE', `refusing to publish an invalid ${name}`, {
          problems: encoded.problems,
        }),
      );
    }
    return this.publish(deviceTopic(name, this.options.unit, this.options.device), encoded.text);
  }

  private publish(topic: string, message: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        this.pending.delete(fail);
        reject(error);
      };
      this.pending.add(fail);
      this.options.client.publish(topic, message, { qos: 1 }, (error) => {
        if (error) return fail(error);
        if (settled) return;
        settled = true;
        this.pending.delete(fail);
        resolve();
      });
    });
  }

  private receive(topic: string, payload: Buffer): void {
    const name = this.replyTopics.get(topic);
    if (!name) return; // another user of the same connection (telemetry commands)
    const decoded = decodePayload(name, payload);
    if (!decoded.ok) {
      this.emit('invalid', { topic, problems: decoded.problems } satisfies InvalidReply);
      return;
    }
    // The topic names the device; a reply naming another item is the Uploader's business (it
    // matches ids and checks receipts against what it holds).
    if (parseTopic(topic)?.device !== this.options.device) return;
    this.emit(REPLIES[name], decoded.value);
  }
}
