/**
 * One typed map from topic to payload, used by both ends (STYLE.md "MQTT"; DESIGN.md "MQTT: topics
 * and payloads"). The gateway's ACL, the device's telemetry client, the fleet monitor and the
 * AsyncAPI document all read this map, so a topic cannot be added in one place and forgotten in
 * another.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { AvailabilitySchema } from './schemas/availability.ts';
import { CommandResultSchema, CommandSchema } from './schemas/command.ts';
import { EventSchema } from './schemas/event.ts';
import { FleetSchema, GatewayStatusSchema } from './schemas/fleet.ts';
import { StatusSchema } from './schemas/status.ts';
import { schemaProblems, type SchemaProblem } from './schemas/validate.ts';

export const TOPIC_ROOT = 'rec';
export const TOPIC_VERSION = 'v1';
/** The device-level segment the gateway's own topics use; no device may carry this number. */
export const GATEWAY_SEGMENT = 'gateway';

export type Role = 'device' | 'manager' | 'technician' | 'gateway';
export const ROLES: readonly Role[] = ['device', 'manager', 'technician', 'gateway'];

export interface TopicSpec<S extends TSchema = TSchema> {
  /** after `rec/v1/{unit}/{device}/` (or `rec/v1/{unit}/gateway/` when `gatewayTopic`) */
  suffix: string;
  /** published by the gateway process itself, never by a client (issue 5: nobody publishes gateway topics) */
  gatewayTopic: boolean;
  schema: S;
  /** `text`: the payload is the UTF-8 string itself (availability); `json`: a JSON document */
  encoding: 'json' | 'text';
  retained: boolean;
  qos: 0 | 1;
  /** roles that may publish; a device only for its own number */
  publishers: readonly Role[];
  /** roles that may subscribe; a device only for its own number */
  readers: readonly Role[];
  description: string;
}

const watchers: readonly Role[] = ['manager', 'technician', 'gateway'];

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
} as const satisfies Record<string, TopicSpec>;

export type TopicName = keyof typeof TOPICS;
export type PayloadOf<N extends TopicName> = Static<(typeof TOPICS)[N]['schema']>;

/** Topic and device segments: no MQTT wildcards or separators, no `$`, bounded length. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function isValidSegment(text: string): boolean {
  return SEGMENT.test(text);
}

export function deviceTopic(
  name: Exclude<TopicName, 'gatewayStatus' | 'fleet'>,
  unit: string,
  device: string,
): string {
  return `${TOPIC_ROOT}/${TOPIC_VERSION}/${unit}/${device}/${TOPICS[name].suffix}`;
}

export function gatewayTopic(name: 'gatewayStatus' | 'fleet', unit: string): string {
  return `${TOPIC_ROOT}/${TOPIC_VERSION}/${unit}/${GATEWAY_SEGMENT}/${TOPICS[name].suffix}`;
}

export interface ParsedTopic {
  name: TopicName;
  unit: string;
  /** the device number, or `gateway` for the gateway's own topics */
  device: string;
}

const bySuffix = new Map<string, TopicName>();
const byGatewaySuffix = new Map<string, TopicName>();
for (const [name, spec] of Object.entries(TOPICS) as [TopicName, TopicSpec][]) {
  (spec.gatewayTopic ? byGatewaySuffix : bySuffix).set(spec.suffix, name);
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
  return name ? { name, unit, device } : undefined;
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
  if (!check(spec.schema, value)) return { ok: false, problems: schemaProblems(spec.schema, value) };
  return { ok: true, text: spec.encoding === 'json' ? JSON.stringify(value) : String(value) };
}
