/**
 * `rec/v1/{unit}/{device}/status` (retained): what a device manager needs to see at a glance
 * (R16: battery and storage before use; R5: pending uploads and the oldest one's deadline).
 * Only integers, strings and booleans: the same rule as journal bodies, so a status can be
 * journaled or compared byte for byte.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeviceId, IsoTime } from './mqtt-common.ts';

export const DeviceStateSchema = Type.Union(
  ['standby', 'recording', 'stopping', 'docked', 'fault'].map((s) => Type.Literal(s)),
  { description: 'the device state machine (DESIGN.md "The device")' },
);

export const StatusSchema = Type.Object(
  {
    device: DeviceId(),
    time: IsoTime("the device's clock when it wrote this status"),
    state: DeviceStateSchema,
    battery: Type.Object(
      {
        percent: Type.Integer({ minimum: 0, maximum: 100 }),
        charging: Type.Boolean(),
        minutesLeft: Type.Integer({ minimum: 0, description: 'estimated minutes of recording on battery' }),
      },
      { additionalProperties: false },
    ),
    storage: Type.Object(
      {
        freeBytes: Type.Integer({ minimum: 0 }),
        totalBytes: Type.Integer({ minimum: 0 }),
        minutesLeft: Type.Integer({ minimum: 0, description: 'minutes of recording the free space holds' }),
      },
      { additionalProperties: false },
    ),
    gnss: Type.Object(
      {
        fix: Type.Boolean(),
        lat: Type.Optional(
          Type.String({ pattern: '^-?\\d{1,2}\\.\\d{1,9}$', description: 'decimal degrees' }),
        ),
        lon: Type.Optional(
          Type.String({ pattern: '^-?\\d{1,3}\\.\\d{1,9}$', description: 'decimal degrees' }),
        ),
      },
      { additionalProperties: false },
    ),
    officer: Type.Optional(Type.String({ maxLength: 64, description: 'the assigned officer (R15)' })),
    uploads: Type.Object(
      {
        pending: Type.Integer({ minimum: 0, description: 'segments recorded but not yet receipted' }),
        oldestDeadline: Type.Optional(
          IsoTime('when the oldest pending segment must be uploaded (R5: 24 h HN 23 / 48 h SX 19)'),
        ),
      },
      { additionalProperties: false },
    ),
    clock: Type.Object(
      {
        source: Type.Union(['gnss', 'ntp', 'gateway', 'rtc'].map((s) => Type.Literal(s))),
        offsetMs: Type.Integer({ description: "the device's own estimate of its clock error" }),
      },
      { additionalProperties: false },
    ),
    profile: Type.Object(
      { id: Type.String({ maxLength: 64 }), version: Type.Integer({ minimum: 0 }) },
      { additionalProperties: false },
    ),
    firmware: Type.String({ maxLength: 64 }),
  },
  { additionalProperties: false, title: 'Device status', $id: 'Status' },
);
export type Status = Static<typeof StatusSchema>;
