/**
 * Who may publish and subscribe where (issue 5 item 2; DESIGN.md "Identity, keys and trust").
 * Pure, so the gateway enforces it and the device checks itself against it before publishing
 * (STACK-NOTES "MQTT": a refused publish disconnects, and mqtt.js would resend it forever).
 *
 * - a device publishes only its own device→ topics and subscribes only to its own commands;
 * - a manager reads status, availability, events, command results and the gateway topics of its
 *   unit, and publishes only commands; a technician likewise;
 * - the gateway role (a relay or second station process) reads everything of its unit;
 * - uploads (issue 6): a device publishes offer/data/done/journal for its own number and reads its
 *   own upload/state, upload/receipt and upload/journal-state; the gateway role (a station relaying
 *   to its center) does the same for any device of its unit; managers and technicians see none of it;
 * - nobody subscribes to `upload/data` (the gateway consumes chunks itself and routes them nowhere,
 *   not even to a gateway-role `#`);
 * - nobody publishes `$SYS/...`, the gateway's own topics, or the upload replies.
 * - a technician or the gateway role publishes a device's retained `profile` (issue 7 item 4; the
 *   broker verifies its signature before retaining it), and the device reads only its own;
 */
import {
  GATEWAY_SEGMENT,
  TOPIC_ROOT,
  TOPIC_VERSION,
  TOPICS,
  isValidSegment,
  parseTopic,
  type Role,
  type TopicName,
  type TopicSpec,
} from './topics.ts';

export interface Identity {
  role: Role;
  /** the certificate's id: the device number for a device */
  id: string;
  unit: string;
}

export function mayPublish(who: Identity, topic: string): TopicName | undefined {
  if (topic.startsWith('$')) return undefined;
  const parsed = parseTopic(topic);
  if (!parsed || parsed.unit !== who.unit) return undefined;
  const spec: TopicSpec = TOPICS[parsed.name];
  if (spec.gatewayTopic || spec.fromGateway || !spec.publishers.includes(who.role)) return undefined;
  if (who.role === 'device' && parsed.device !== who.id) return undefined;
  return parsed.name;
}

/**
 * Subscriptions are checked level by level: the filter must name a topic of the map exactly, with
 * `+` allowed only in the device level and only for roles that read every device's topic.
 * `#` is refused for everyone except the gateway role (under its unit only).
 */
export function maySubscribe(who: Identity, filter: string): boolean {
  if (filter.startsWith('$')) return false;
  const levels = filter.split('/');
  if (levels[0] !== TOPIC_ROOT || levels[1] !== TOPIC_VERSION || levels[2] !== who.unit) return false;
  if (who.role === 'gateway' && levels.length === 4 && levels[3] === '#') return true;
  if (levels.length < 5) return false;
  const device = levels[3]!;
  const suffix = levels.slice(4).join('/');
  if (suffix.includes('+') || suffix.includes('#')) return false;
  if (device !== '+' && !isValidSegment(device)) return false;
  for (const spec of Object.values(TOPICS) as TopicSpec[]) {
    if (spec.suffix !== suffix || !spec.readers.includes(who.role)) continue;
    if (spec.gatewayTopic && device !== GATEWAY_SEGMENT && device !== '+') continue;
    if (!spec.gatewayTopic && device === GATEWAY_SEGMENT) continue;
    if (who.role === 'device' && device !== who.id) continue;
    return true;
  }
  return false;
}
