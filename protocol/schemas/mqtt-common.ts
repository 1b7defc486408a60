/** Building blocks shared by the MQTT payload schemas (DESIGN.md "MQTT: topics and payloads"). */
import { Type } from '@sinclair/typebox';

/** An RFC 3339 UTC timestamp with milliseconds, as `Date.prototype.toISOString()` writes it. */
export const IsoTime = (description: string) =>
  Type.String({
    pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,3})?Z$',
    maxLength: 30,
    description,
  });

export const DeviceId = (description = 'device number') =>
  Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description });

/** Request ids: chosen by the requester, echoed in the reply. */
export const RequestId = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9_.:-]+$',
  description: 'chosen by the requester and echoed in the reply',
});
