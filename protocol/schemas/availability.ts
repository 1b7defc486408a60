/**
 * `rec/v1/{unit}/{device}/availability` (retained): the plain text `online` or `offline`
 * (not JSON), `offline` being the last will (STYLE.md "MQTT", as Zigbee2MQTT does).
 */
import { Type, type Static } from '@sinclair/typebox';

export const AvailabilitySchema = Type.Union([Type.Literal('online'), Type.Literal('offline')], {
  title: 'Availability',
  $id: 'Availability',
  description: 'plain text payload; offline is the last will',
});
export type Availability = Static<typeof AvailabilitySchema>;
