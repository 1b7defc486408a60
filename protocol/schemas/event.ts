/**
 * `rec/v1/{unit}/{device}/event` (not retained): journal entries worth telling now: record
 * start/stop, mark, photo, warnings. The journal stays the evidence; this is a notification.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeviceId, IsoTime } from './mqtt-common.ts';

export const EventSchema = Type.Object(
  {
    device: DeviceId(),
    time: IsoTime('when it happened, device clock'),
    seq: Type.Integer({ minimum: 0, description: 'journal sequence number of the entry' }),
    kind: Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9.-]*$' }),
    level: Type.Optional(Type.Union([Type.Literal('info'), Type.Literal('warning')])),
    body: Type.Record(Type.String(), Type.Unknown(), { description: 'the journal entry body' }),
  },
  { additionalProperties: false, title: 'Device event', $id: 'Event' },
);
export type DeviceEvent = Static<typeof EventSchema>;
