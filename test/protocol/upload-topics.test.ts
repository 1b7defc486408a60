import test from 'ava';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { mayPublish, maySubscribe, type Identity } from '../../protocol/acl.ts';
import {
  TOPICS,
  decodePayload,
  deviceTopic,
  parseTopic,
  uploadDataTopic,
  type TopicName,
} from '../../protocol/topics.ts';
import {
  MqttUploadLink,
  maxChunkBytes,
  type DirectMqttClient,
  type UploadMqttClient,
} from '../../protocol/upload-mqtt.ts';
import { ProfileSchema } from '../../protocol/schemas/profile.ts';
import { GatewayConfigSchema } from '../../gateway/config.ts';
import { asyncApiDocument } from '../../protocol/asyncapi.ts';
import type { JournalState, UploadState } from '../../protocol/upload.ts';

const U = 'HN-CS';
const D = 'HN-CS-0001';
const device: Identity = { role: 'device', id: D, unit: U };
const other: Identity = { role: 'device', id: 'HN-CS-0002', unit: U };
const manager: Identity = { role: 'manager', id: 'm1', unit: U };
const technician: Identity = { role: 'technician', id: 't1', unit: U };
const relay: Identity = { role: 'gateway', id: 'station-HN-CS', unit: U };
const foreignRelay: Identity = { role: 'gateway', id: 'station-X', unit: 'OTHER' };

// An mqtt.js client must fit the structural interface the link takes (checked by tsc).
const _fits: (c: MqttClient) => UploadMqttClient = (c) => c;
const _fitsDirect: (c: MqttClient) => DirectMqttClient = (c) => c;
void _fits;
void _fitsDirect;

const SENT = ['uploadOffer', 'uploadDone', 'uploadJournal'] as const;
const REPLIES = ['uploadState', 'uploadReceipt', 'uploadJournalState'] as const;

test('upload/data topics carry a valid id and a canonical decimal offset', (t) => {
  t.deepEqual(parseTopic(uploadDataTopic(U, D, 'seg-000042.rec', 262144)), {
    name: 'uploadData',
    unit: U,
    device: D,
    id: 'seg-000042.rec',
    offset: 262144,
  });
  t.deepEqual(parseTopic(uploadDataTopic(U, D, 'a', 0)), {
    name: 'uploadData',
    unit: U,
    device: D,
    id: 'a',
    offset: 0,
  });
  t.deepEqual(
    parseTopic(uploadDataTopic(U, D, 'a', Number.MAX_SAFE_INTEGER))?.offset,
    Number.MAX_SAFE_INTEGER,
  );
  const base = `rec/v1/${U}/${D}/upload/data`;
  for (const bad of [
    base,
    `${base}/seg`,
    `${base}/seg/01`,
    `${base}/seg/-1`,
    `${base}/seg/+1`,
    `${base}/seg/1.5`,
    `${base}/seg/1e3`,
    `${base}/seg/0x10`,
    `${base}/seg/ 1`,
    `${base}/seg/`,
    `${base}/seg/9007199254740992`,
    `${base}/seg/99999999999999999999`,
    `${base}/.hidden/0`,
    `${base}/-x/0`,
    `${base}/${'a'.repeat(129)}/0`,
    `${base}/+/0`,
    `${base}/#/0`,
    `${base}/seg/0/extra`,
    `${base}/a/b/0`,
    `rec/v1/${U}/gateway/upload/data/seg/0`,
  ]) {
    t.is(parseTopic(bad), undefined, bad);
  }
  for (const name of [...SENT, ...REPLIES]) {
    t.deepEqual(parseTopic(deviceTopic(name, U, D)), { name, unit: U, device: D });
  }
  t.is(parseTopic(`rec/v1/${U}/${D}/upload/offer/x`), undefined);
  t.is(parseTopic(`rec/v1/${U}/gateway/upload/receipt`), undefined);
});

test('devices send only their own items; the gateway role any device of its unit; nobody else', (t) => {
  const own = (name: (typeof SENT)[number]) => deviceTopic(name, U, D);
  for (const name of SENT) {
    t.is(mayPublish(device, own(name)), name);
    t.is(mayPublish(other, own(name)), undefined, `another device on ${name}`);
    t.is(mayPublish(relay, own(name)), name, `relay on ${name}`);
    t.is(mayPublish(foreignRelay, own(name)), undefined, `foreign relay on ${name}`);
    t.is(mayPublish(manager, own(name)), undefined);
    t.is(mayPublish(technician, own(name)), undefined);
  }
  const data = uploadDataTopic(U, D, 'seg-1', 0);
  t.is(mayPublish(device, data), 'uploadData');
  t.is(mayPublish(relay, data), 'uploadData');
  for (const who of [other, manager, technician, foreignRelay])
    t.is(mayPublish(who, data), undefined, who.id);
  t.is(mayPublish(device, `rec/v1/${U}/${D}/upload/data/seg-1/007`), undefined);
});

test('the upload replies are published by the gateway process alone', (t) => {
  for (const name of REPLIES) {
    t.true(TOPICS[name].fromGateway);
    for (const who of [device, other, manager, technician, relay]) {
      t.is(mayPublish(who, deviceTopic(name, U, D)), undefined, `${who.role} ${who.id} on ${name}`);
    }
  }
});

test('a device reads its own replies, the gateway role its unit; managers and technicians nothing', (t) => {
  for (const name of REPLIES) {
    const topic = deviceTopic(name, U, D);
    t.true(maySubscribe(device, topic), name);
    t.false(maySubscribe(other, topic), name);
    t.false(maySubscribe(device, `rec/v1/${U}/+/${TOPICS[name].suffix}`), name);
    t.true(maySubscribe(relay, topic), name);
    t.true(maySubscribe(relay, `rec/v1/${U}/+/${TOPICS[name].suffix}`), name);
    t.false(maySubscribe(foreignRelay, topic), name);
    for (const who of [manager, technician]) {
      t.false(maySubscribe(who, topic), `${who.role} ${name}`);
      t.false(maySubscribe(who, `rec/v1/${U}/+/${TOPICS[name].suffix}`), `${who.role} ${name}`);
    }
  }
  for (const name of SENT) {
    for (const who of [device, other, manager, technician, relay]) {
      t.false(maySubscribe(who, deviceTopic(name, U, D)), `${who.role} reads ${name}`);
    }
  }
});

test('nobody subscribes to upload/data, in any form', (t) => {
  for (const who of [device, other, manager, technician, relay]) {
    for (const f of [
      uploadDataTopic(U, D, 'seg-1', 0),
      `rec/v1/${U}/${D}/upload/data/+/+`,
      `rec/v1/${U}/${D}/upload/data/#`,
      `rec/v1/${U}/+/upload/data/+/+`,
      `rec/v1/${U}/${D}/upload/data`,
      `rec/v1/${U}/${D}/upload/#`,
      `rec/v1/${U}/${D}/upload/+`,
    ]) {
      t.false(maySubscribe(who, f), `${who.role} ${f}`);
    }
  }
});

test('chunk payloads are raw bytes; offers and replies are validated JSON', (t) => {
  const chunk = decodePayload('uploadData', Buffer.from([0xff, 0x00, 0xfe]));
  t.true(chunk.ok);
  t.false(decodePayload('uploadData', Buffer.alloc(0)).ok);
  t.false(decodePayload('uploadOffer', Buffer.from('{"id":"x"}')).ok);
  t.true(
    decodePayload('uploadState', Buffer.from(JSON.stringify({ id: 'x', status: 'send', offset: 0 }))).ok,
  );
  t.false(
    decodePayload('uploadState', Buffer.from(JSON.stringify({ id: 'x', status: 'maybe', offset: 0 }))).ok,
  );
});

test('the AsyncAPI document names the data parameters and the reply direction', (t) => {
  const doc = asyncApiDocument() as {
    channels: Record<string, { address: string }>;
    operations: Record<string, { action: string }>;
    components: { messages: Record<string, { contentType: string }> };
  };
  t.is(doc.channels.uploadData!.address, 'rec/v1/{unit}/{device}/upload/data/{id}/{offset}');
  t.is(doc.components.messages.uploadData!.contentType, 'application/octet-stream');
  t.is(doc.operations['send-uploadReceipt']!.action, 'send');
  t.is(doc.operations['receive-uploadOffer']!.action, 'receive');
});

/** A stand-in for the broker side of one connection: records publishes, delivers messages. */
class LoopClient extends EventEmitter implements UploadMqttClient {
  published: { topic: string; message: string | Buffer; qos: number }[] = [];
  subscribed: string[] = [];
  refuse: string[] = [];
  publish(topic: string, message: string | Buffer, opts: { qos: 0 | 1 }, cb: (e?: Error) => void) {
    this.published.push({ topic, message, qos: opts.qos });
    setImmediate(() => cb());
    return this;
  }
  subscribe(
    topics: string[],
    _o: { qos: 0 | 1 },
    cb: (e: Error | null, g?: { topic: string; qos: number }[]) => void,
  ) {
    this.subscribed.push(...topics);
    setImmediate(() =>
      cb(
        null,
        topics.map((topic) => ({ topic, qos: this.refuse.includes(topic) ? 128 : 1 })),
      ),
    );
    return this;
  }
  unsubscribe(topics: string[], cb: (e?: Error) => void) {
    this.subscribed = this.subscribed.filter((s) => !topics.includes(s));
    setImmediate(() => cb());
    return this;
  }
}

test('MqttUploadLink publishes on the device topics and emits validated replies', async (t) => {
  const client = new LoopClient();
  const link = new MqttUploadLink({ client, unit: U, device: D });
  await link.start();
  t.deepEqual(client.subscribed.sort(), REPLIES.map((n) => deviceTopic(n, U, D)).sort());
  await link.sendChunk('seg-1', 262144, Buffer.from([1, 2, 3]));
  await link.sendDone({ id: 'seg-1', bytes: 3, sha256: 'a'.repeat(64) });
  await link.sendJournal({ from: 0, lines: ['{}'] });
  t.deepEqual(
    client.published.map((p) => [p.topic, p.qos]),
    [
      [uploadDataTopic(U, D, 'seg-1', 262144), 1],
      [deviceTopic('uploadDone', U, D), 1],
      [deviceTopic('uploadJournal', U, D), 1],
    ],
  );
  t.true(Buffer.isBuffer(client.published[0]!.message));
  // An invalid message is refused before it reaches the wire (a refused publish disconnects).
  await t.throwsAsync(link.sendDone({ id: 'seg-1', bytes: -1, sha256: 'x' }), {
    message: /UPLOAD_BAD_MESSAGE/,
  });
  t.is(client.published.length, 3);

  const states: UploadState[] = [];
  const journal: JournalState[] = [];
  const invalid: unknown[] = [];
  link.on('state', (s: UploadState) => states.push(s));
  link.on('journal-state', (s: JournalState) => journal.push(s));
  link.on('invalid', (i) => invalid.push(i));
  const good: UploadState = { id: 'seg-1', status: 'send', offset: 0 };
  client.emit('message', deviceTopic('uploadState', U, D), Buffer.from(JSON.stringify(good)));
  client.emit(
    'message',
    deviceTopic('uploadState', U, D),
    Buffer.from('{"id":"seg-1","status":"nope","offset":0}'),
  );
  client.emit('message', deviceTopic('uploadReceipt', U, D), Buffer.from('not json'));
  client.emit('message', deviceTopic('uploadState', U, 'HN-CS-0002'), Buffer.from(JSON.stringify(good)));
  client.emit('message', deviceTopic('cmd', U, D), Buffer.from('{}'));
  client.emit('message', deviceTopic('uploadJournalState', U, D), Buffer.from('{"status":"ok","head":null}'));
  t.deepEqual(states, [good]);
  t.deepEqual(journal, [{ status: 'ok', head: null }]);
  t.is(invalid.length, 2);

  await link.stop();
  t.deepEqual(client.subscribed, []);
  client.emit('message', deviceTopic('uploadState', U, D), Buffer.from(JSON.stringify(good)));
  t.is(states.length, 1);
});

test('MqttUploadLink.start fails when the gateway refuses a reply topic', async (t) => {
  const client = new LoopClient();
  client.refuse = [deviceTopic('uploadReceipt', U, D)];
  const link = new MqttUploadLink({ client, unit: U, device: D });
  await t.throwsAsync(link.start(), { message: /UPLOAD_LINK_REFUSED/ });
});

test('every topic of the map is reachable by exactly one parse', (t) => {
  for (const name of Object.keys(TOPICS) as TopicName[]) {
    if (name === 'uploadData' || TOPICS[name].gatewayTopic) continue;
    t.is(
      parseTopic(deviceTopic(name as Exclude<TopicName, 'uploadData' | 'fleet' | 'gatewayStatus'>, U, D))
        ?.name,
      name,
    );
  }
});

test('the largest profile chunk fits the default gateway frame limit with the longest topic', (t) => {
  const frame = GatewayConfigSchema.properties.maxFrameBytes.default as number;
  const gateway = ProfileSchema.properties.gateway.anyOf?.[0] ?? ProfileSchema.properties.gateway;
  const upload = (gateway as { properties: { upload: { properties: { chunkBytes: { maximum: number } } } } })
    .properties.upload.properties.chunkBytes;
  t.is(upload.maximum, maxChunkBytes(frame));
  // fixed header (5) + topic length (2) + longest topic + packet id (2) + chunk ≤ frame
  const longest = uploadDataTopic('u'.repeat(64), 'd'.repeat(64), 'i'.repeat(128), Number.MAX_SAFE_INTEGER);
  t.true(5 + 2 + Buffer.byteLength(longest) + 2 + upload.maximum <= frame, longest);
});

/** What the direct data path needs of mqtt.js, over a stream the test reads back with mqtt-packet. */
class DirectClient extends EventEmitter {
  connected = true;
  readonly stream = new PassThrough();
  readonly live = new Set<number>();
  private next = 65_534; // wraps past 65,535 like mqtt.js's default provider
  readonly messageIdProvider = {
    allocate: () => {
      const id = this.next;
      this.next = this.next === 65_535 ? 1 : this.next + 1;
      this.live.add(id);
      return id;
    },
    deallocate: (id: number) => this.live.delete(id),
  };
  /** the packets written on the connection, parsed */
  readonly packets: mqttPacket.IPublishPacket[] = [];
  constructor() {
    super();
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (p) => this.packets.push(p as mqttPacket.IPublishPacket));
    this.stream.on('data', (d: Buffer) => parser.parse(d));
  }
  puback(messageId: number) {
    this.emit('packetreceive', { cmd: 'puback', messageId });
  }
}

test('direct: a chunk is one QoS 1 PUBLISH on the connection, with an id from the client, settled by its PUBACK', async (t) => {
  const client = new LoopClient();
  const direct = new DirectClient();
  const link = new MqttUploadLink({ client, direct, unit: U, device: D });
  await link.start();
  const data = Buffer.from('chunk bytes');
  const first = link.sendChunk('seg-1', 0, data);
  const second = link.sendChunk('seg-1', 11, data);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(client.published, [], 'not through mqtt.js publish');
  t.deepEqual(
    direct.packets.map((p) => [
      p.cmd,
      p.qos,
      p.retain,
      p.topic,
      p.messageId,
      Buffer.from(p.payload).toString(),
    ]),
    [
      ['publish', 1, false, uploadDataTopic(U, D, 'seg-1', 0), 65_534, 'chunk bytes'],
      ['publish', 1, false, uploadDataTopic(U, D, 'seg-1', 11), 65_535, 'chunk bytes'],
    ],
  );
  let settled = 0;
  void first.then(() => settled++);
  void second.then(() => settled++);
  direct.puback(7); // not ours (mqtt.js's own): ignored
  direct.emit('packetreceive', { cmd: 'suback', messageId: 65_534 });
  await new Promise((r) => setImmediate(r));
  t.is(settled, 0);
  direct.puback(65_535);
  await second;
  t.deepEqual([...direct.live], [65_534], 'an acknowledged id goes back to the client');
  direct.puback(65_534);
  await first;
  t.is(direct.live.size, 0);
  // JSON messages still go through mqtt.js (its resend store keeps them across a reconnect).
  await link.sendDone({ id: 'seg-1', bytes: 22, sha256: 'a'.repeat(64) });
  t.is(client.published.length, 1);
});

test('direct: a lost connection fails the chunks in flight; none is written while disconnected', async (t) => {
  const client = new LoopClient();
  const direct = new DirectClient();
  const link = new MqttUploadLink({ client, direct, unit: U, device: D });
  await link.start();
  const inFlight = link.sendChunk('seg-1', 0, Buffer.alloc(4));
  client.emit('close');
  await t.throwsAsync(inFlight, { message: /closed/ });
  t.is(direct.live.size, 0, 'its id is released');
  direct.connected = false;
  await t.throwsAsync(link.sendChunk('seg-1', 0, Buffer.alloc(4)), { message: /not connected/ });
  await new Promise((r) => setImmediate(r));
  t.is(direct.packets.length, 1);
  // Before start() (and after stop()) the link does not listen for PUBACKs: chunks go through publish.
  await link.stop();
  direct.connected = true;
  await link.sendChunk('seg-1', 0, Buffer.alloc(4));
  t.is(client.published.length, 1);
});
