/**
 * One typed map from topic to payload, used by both ends (STYLE.md "MQTT"; DESIGN.md "MQTT: topics
 * and payloads"). The gateway's ACL, the device's telemetry client, the fleet monitor and the
 * AsyncAPI document all read this map, so a topic cannot be added in one place and forgotten in
 * another.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { AvailabilitySchema } from './schemas/availability.ts';
import { CommandResultSchema, CommandSchema } from './schemas/command.ts';
import { EventSchema } from './schemas/event.ts';
import { FleetSchema, GatewayStatusSchema } from './schemas/fleet.ts';
import { SignedProfilePayloadSchema } from './profile-push.ts';
import { StatusSchema } from './schemas/status.ts';
import {
  DoneSchema,
  JournalBatchSchema,
  JournalStateSchema,
  OfferSchema,
  ReceiptSchema,
  UploadId,
  UploadStateSchema,
} from './upload.ts';
import { schemaProblems, type SchemaProblem } from './schemas/validate.ts';

export const TOPIC_ROOT = 'rec';
export const TOPIC_VERSION = 'v1';
/** The device-level segment the gateway's own topics use; no device may carry this number. */
export const GATEWAY_SEGMENT = 'gateway';

export type Role = 'device' | 'manager' | 'technician' | 'gateway';
export const ROLES: readonly Role[] = ['device', 'manager', 'technician', 'gateway'];

/** A topic level that carries a value: `upload/data/{id}/{offset}` (issue 6). */
export type TopicParam = 'id' | 'offset';

export interface TopicSpec<S extends TSchema = TSchema> {
  /** after `rec/v1/{unit}/{device}/` (or `rec/v1/{unit}/gateway/` when `gatewayTopic`) */
  suffix: string;
  /** levels after the suffix, each one value: `{suffix}/{id}/{offset}` */
  params?: readonly TopicParam[];
  /** published by the gateway process itself, never by a client (issue 5: nobody publishes gateway topics) */
  gatewayTopic: boolean;
  /**
   * under a device's prefix but published only by the gateway process (upload replies): no client
   * may publish it, whatever `publishers` says
   */
  fromGateway?: boolean;
  schema: S;
  /**
   * `text`: the payload is the UTF-8 string itself (availability); `json`: a JSON document;
   * `bytes`: raw bytes, not decoded (upload chunks; DESIGN.md "MQTT: topics and payloads")
   */
  encoding: 'json' | 'text' | 'bytes';
  retained: boolean;
  qos: 0 | 1;
  /** roles that may publish; a device only for its own number */
  publishers: readonly Role[];
  /** roles that may subscribe; a device only for its own number */
  readers: readonly Role[];
  description: string;
}

const watchers: readonly Role[] = ['manager', 'technician', 'gateway'];
/**
 * Uploads (issue 6): a device sends its own items; the gateway role (a station relaying to its
 * center) sends any device's items of its unit with the same protocol (DESIGN.md "Uploads").
 */
const uploaders: readonly Role[] = ['device', 'gateway'];

/** An upload chunk: raw bytes; the frame limit of the transport bounds the size. */
export const UploadChunkSchema = Type.Uint8Array({
  minByteLength: 1,
  title: 'UploadChunk',
  description: 'raw ciphertext bytes of the item at the offset named by the topic',
});

export const TOPICS = {
  availability: {
    suffix: 'availability',
    gatewayTopic: false,
    schema: AvailabilitySchema,
    encoding: 'text',
    retained: true,
    qos: 1,
    publishers: ['device'],
    readers: watchers,
    description: '`online` when connected; `offline` is the last will',
  },
  status: {
    suffix: 'status',
    gatewayTopic: false,
    schema: StatusSchema,
    encoding: 'json',
    retained: true,
    qos: 1,
    publishers: ['device'],
    readers: watchers,
    description: 'battery, storage, state, GNSS, officer, pending uploads, clock, profile, firmware',
  },
  event: {
    suffix: 'event',
    gatewayTopic: false,
    schema: EventSchema,
    encoding: 'json',
    retained: false,
    qos: 1,
    publishers: ['device'],
    readers: watchers,
    description: 'journal entries worth telling now: record start/stop, mark, photo, warnings',
  },
  cmd: {
    suffix: 'cmd',
    gatewayTopic: false,
    schema: CommandSchema,
    encoding: 'json',
    retained: false,
    qos: 1,
    publishers: ['manager', 'technician', 'gateway'],
    readers: ['device', 'gateway'],
    description: 'a command to one device; always answered on cmd/result with the same id',
  },
  cmdResult: {
    suffix: 'cmd/result',
    gatewayTopic: false,
    schema: CommandResultSchema,
    encoding: 'json',
    retained: false,
    qos: 1,
    publishers: ['device'],
    readers: watchers,
    description: "the device's reply to a command, errors included",
  },
  gatewayStatus: {
    suffix: 'status',
    gatewayTopic: true,
    schema: GatewayStatusSchema,
    encoding: 'json',
    retained: true,
    qos: 0,
    publishers: [],
    readers: watchers,
    description: "the gateway's health and reject counters",
  },
  fleet: {
    suffix: 'fleet',
    gatewayTopic: true,
    schema: FleetSchema,
    encoding: 'json',
    retained: true,
    qos: 0,
    publishers: [],
    readers: watchers,
    description: 'every device of the unit with its alerts, alerts first',
  },
  uploadOffer: {
    suffix: 'upload/offer',
    gatewayTopic: false,
    schema: OfferSchema,
    encoding: 'json',
    retained: false,
    qos: 1,
    publishers: uploaders,
    readers: [],
    description: 'an item to upload: its signed journal entry, ciphertext size and SHA-256',
  },
  uploadData: {
    suffix: 'upload/data',
    params: ['id', 'offset'],
    gatewayTopic: false,
    schema: UploadChunkSchema,
    encoding: 'bytes',
    retained: false,
    qos: 1,
    publishers: uploaders,
    // Nobody subscribes: the gateway consumes chunks itself and routes them nowhere (STACK-NOTES "MQTT").
    readers: [],
    description: 'raw bytes of item {id} starting at byte {offset}; the PUBACK paces the sender',
  },
  uploadDone: {
    suffix: 'upload/done',
    gatewayTopic: false,
    schema: DoneSchema,
    encoding: 'json',
    retained: false,
    qos: 1,
    publishers: uploaders,
    readers: [],
    description: 'all bytes sent: the gateway checks size and hash, stores, and answers with a receipt',
  },
  uploadJournal: {
    suffix: 'upload/journal',
    gatewayTopic: false,
    schema: JournalBatchSchema,
    encoding: 'json',
    retained: false,
    qos: 1,
    publishers: uploaders,
    readers: [],
    description: "a batch of the device's journal lines, in order, so the station holds the whole chain",
  },
  uploadState: {
    suffix: 'upload/state',
    gatewayTopic: false,
    fromGateway: true,
    schema: UploadStateSchema,
    encoding: 'json',
    retained: false,
    qos: 1,
    publishers: [],
    readers: uploaders,
    description: 'the answer to an offer (or a chunk out of place): send from offset, have it, or refused',
  },
  uploadReceipt: {
    suffix: 'upload/receipt',
    gatewayTopic: false,
    fromGateway: true,
    schema: ReceiptSchema,
    encoding: 'json',
    retained: false,
    qos: 1,
    publishers: [],
    readers: uploaders,
    description: "the gateway's signed receipt for a stored item; only then the sender deletes its copy",
  },
  uploadJournalState: {
    suffix: 'upload/journal-state',
    gatewayTopic: false,
    fromGateway: true,
    schema: JournalStateSchema,
    encoding: 'json',
    retained: false,
    qos: 1,
    publishers: [],
    readers: uploaders,
    description: 'the last journal line the station holds for the device, or why a batch was refused',
  },
  // Issue 7 item 4. A technician (or a gateway-role tool) publishes; the broker retains it only
  // after verifying the signature against the unit CA for the topic's device (gateway/profile-service.ts).
  profile: {
    suffix: 'profile',
    gatewayTopic: false,
    schema: SignedProfilePayloadSchema,
    encoding: 'json',
    retained: true,
    qos: 1,
    publishers: ['technician', 'gateway'],
    readers: ['device', 'technician', 'gateway'],
    description: 'the signed profile for this device; answered on cmd/result with id profile:{sha256/128}',
  },
} as const satisfies Record<string, TopicSpec>;

export type TopicName = keyof typeof TOPICS;
export type PayloadOf<N extends TopicName> = Static<(typeof TOPICS)[N]['schema']>;

/** Topic and device segments: no MQTT wildcards or separators, no `$`, bounded length. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function isValidSegment(text: string): boolean {
  return SEGMENT.test(text);
}

export function deviceTopic(
  name: Exclude<TopicName, 'gatewayStatus' | 'fleet' | 'uploadData'>,
  unit: string,
  device: string,
): string {
  return `${TOPIC_ROOT}/${TOPIC_VERSION}/${unit}/${device}/${TOPICS[name].suffix}`;
}

/** `rec/v1/{unit}/{device}/upload/data/{id}/{offset}` */
export function uploadDataTopic(unit: string, device: string, id: string, offset: number): string {
  return `${TOPIC_ROOT}/${TOPIC_VERSION}/${unit}/${device}/${TOPICS.uploadData.suffix}/${id}/${offset}`;
}

export function gatewayTopic(name: 'gatewayStatus' | 'fleet', unit: string): string {
  return `${TOPIC_ROOT}/${TOPIC_VERSION}/${unit}/${GATEWAY_SEGMENT}/${TOPICS[name].suffix}`;
}

export interface ParsedTopic {
  name: TopicName;
  unit: string;
  /** the device number, or `gateway` for the gateway's own topics */
  device: string;
  /** `upload/data`: the item id */
  id?: string;
  /** `upload/data`: the byte offset */
  offset?: number;
}

const bySuffix = new Map<string, TopicName>();
const byGatewaySuffix = new Map<string, TopicName>();
const withParams: [TopicName, TopicSpec & { params: readonly TopicParam[] }][] = [];
for (const [name, spec] of Object.entries(TOPICS) as [TopicName, TopicSpec][]) {
  if (spec.params) withParams.push([name, spec as TopicSpec & { params: readonly TopicParam[] }]);
  else (spec.gatewayTopic ? byGatewaySuffix : bySuffix).set(spec.suffix, name);
}

const UPLOAD_ID = new RegExp(UploadId.pattern!);
/** a decimal safe integer without a sign or leading zeros, so each offset has exactly one topic */
const OFFSET = /^(0|[1-9][0-9]{0,15})$/;

function parseParam(param: TopicParam, level: string): string | number | undefined {
  if (param === 'id') return UPLOAD_ID.test(level) ? level : undefined;
  if (!OFFSET.test(level)) return undefined;
  const n = Number(level);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Parses a concrete topic (no wildcards); undefined when it is not one of ours. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const levels = topic.split('/');
  if (levels.length < 5 || levels[0] !== TOPIC_ROOT || levels[1] !== TOPIC_VERSION) return undefined;
  const unit = levels[2]!;
  const device = levels[3]!;
  if (!isValidSegment(unit) || !isValidSegment(device)) return undefined;
  const suffix = levels.slice(4).join('/');
  const name = (device === GATEWAY_SEGMENT ? byGatewaySuffix : bySuffix).get(suffix);
  if (name) return { name, unit, device };
  if (device === GATEWAY_SEGMENT) return undefined;
  for (const [paramName, spec] of withParams) {
    const base = levels.length - spec.params.length;
    if (base < 5 || levels.slice(4, base).join('/') !== spec.suffix) continue;
    const parsed: ParsedTopic = { name: paramName, unit, device };
    for (const [i, param] of spec.params.entries()) {
      const value = parseParam(param, levels[base + i]!);
      if (value === undefined) return undefined;
      (parsed as unknown as Record<string, unknown>)[param] = value;
    }
    return parsed;
  }
  return undefined;
}

/**
 * Each topic's schema compiled once into a checking function: the same JSON Schema rules as
 * `Value.Check` at a fraction of the cost. The gateway checks every message and every fleet
 * snapshot (5,000 devices: 55 ms interpreted) against these (bench/fleet.ts).
 */
const checkers = new WeakMap<TSchema, TypeCheck<TSchema>>();
function check(schema: TSchema, value: unknown): boolean {
  let checker = checkers.get(schema);
  if (!checker) {
    checker = TypeCompiler.Compile(schema);
    checkers.set(schema, checker);
  }
  return checker.Check(value);
}

/** Stateless with the default `stream: false`, so one instance serves every call. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

export type DecodeResult<N extends TopicName> =
  { ok: true; value: PayloadOf<N> } | { ok: false; problems: SchemaProblem[] };

/** Decodes and validates a payload received on topic `name`; every problem is reported. */
export function decodePayload<N extends TopicName>(name: N, payload: Uint8Array): DecodeResult<N> {
  const spec: TopicSpec = TOPICS[name];
  if (spec.encoding === 'bytes') {
    if (check(spec.schema, payload)) return { ok: true, value: payload as PayloadOf<N> };
    return { ok: false, problems: [{ path: '/', message: 'expected at least one byte' }] };
  }
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return { ok: false, problems: [{ path: '/', message: 'payload is not UTF-8' }] };
  }
  let value: unknown = text;
  if (spec.encoding === 'json') {
    try {
      value = JSON.parse(text);
    } catch (error) {
      return { ok: false, problems: [{ path: '/', message: `not JSON: ${(error as Error).message}` }] };
    }
  }
  // Check first: the fast path for the honest majority; collect every problem only on failure.
  if (check(spec.schema, value)) return { ok: true, value: value as PayloadOf<N> };
  return { ok: false, problems: schemaProblems(spec.schema, value) };
}

/** Encodes a payload for topic `name`, validating it first so a sender never publishes what the gateway drops. */
export function encodePayload<N extends TopicName>(
  name: N,
  value: PayloadOf<N>,
): { ok: true; text: string } | { ok: false; problems: SchemaProblem[] } {
  const spec: TopicSpec = TOPICS[name];
  if (spec.encoding === 'bytes') throw new TypeError(`${name} carries raw bytes: publish them as they are`);
  if (!check(spec.schema, value)) return { ok: false, problems: schemaProblems(spec.schema, value) };
  return { ok: true, text: spec.encoding === 'json' ? JSON.stringify(value) : String(value) };
}
