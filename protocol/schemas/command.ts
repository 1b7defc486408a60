/**
 * `rec/v1/{unit}/{device}/cmd` and `.../cmd/result`: requests carry an id and always get a reply,
 * errors included (STYLE.md "MQTT", Zigbee2MQTT's bridge request/response).
 */
import { Type, type Static } from '@sinclair/typebox';
import { IsoTime, RequestId } from './mqtt-common.ts';

export const CommandNames = ['locate', 'sync-time', 'report-now'] as const;
export type CommandName = (typeof CommandNames)[number];

export const CommandSchema = Type.Object(
  {
    id: RequestId,
    name: Type.Union(
      CommandNames.map((n) => Type.Literal(n)),
      {
        description:
          'locate: buzz and blink; sync-time: set the clock offset from args.time; report-now: publish status now',
      },
    ),
    time: IsoTime("the sender's clock when it sent the command"),
    args: Type.Optional(
      Type.Object(
        {
          time: Type.Optional(IsoTime('sync-time: the reference time')),
          seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 300, description: 'locate: how long' })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, title: 'Command', $id: 'Command' },
);
export type Command = Static<typeof CommandSchema>;

export const CommandResultSchema = Type.Object(
  {
    id: RequestId,
    name: Type.String({ maxLength: 64 }),
    ok: Type.Boolean(),
    time: IsoTime("the device's clock when it replied"),
    result: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    error: Type.Optional(
      Type.Object(
        { code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: 1024 }) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, title: 'Command result', $id: 'CommandResult' },
);
export type CommandResult = Static<typeof CommandResultSchema>;
