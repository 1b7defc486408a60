/**
 * `rec/v1/{unit}/gateway/fleet` (retained): the fleet monitor's view of every device, alerts first,
 * and `rec/v1/{unit}/gateway/status` (retained): the gateway's own health and reject counters.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeviceId, IsoTime } from './mqtt-common.ts';
import { DeviceStateSchema } from './status.ts';

export const AlertNames = [
  'offline',
  'battery-low',
  'storage-low',
  'upload-overdue',
  'clock-drift',
  // Issue 6: the station refused an upload of this device (forged offer, broken journal chain,
  // corrupted bytes), or could not store it (the station's own disk is full or failing).
  'upload-refused',
  'station-storage',
  // The device's journal says it holds evidence it could not keep whole: an unfinished seal kept
  // after a power cut, or a local file that no longer hashes to its sealing entry.
  'evidence-damaged',
] as const;
export type AlertName = (typeof AlertNames)[number];

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()]);

export const FleetDeviceSchema = Type.Object(
  {
    device: DeviceId(),
    online: Type.Boolean(),
    lastSeen: IsoTime('gateway clock: the last message from this device'),
    state: Nullable(DeviceStateSchema),
    officer: Nullable(Type.String()),
    batteryPercent: Nullable(Type.Integer()),
    charging: Nullable(Type.Boolean()),
    batteryMinutesLeft: Nullable(Type.Integer()),
    recordingMinutesLeft: Nullable(
      Type.Integer({ description: 'minutes of recording the free storage holds' }),
    ),
    storageFreePercent: Nullable(Type.Integer()),
    pendingUploads: Nullable(Type.Integer()),
    oldestDeadline: Nullable(IsoTime('R5: the oldest pending upload is due then')),
    clockOffsetMs: Nullable(
      Type.Integer({ description: 'device clock minus gateway clock, measured on receipt' }),
    ),
    alerts: Type.Array(Type.Union(AlertNames.map((a) => Type.Literal(a)))),
  },
  { additionalProperties: false },
);
export type FleetDevice = Static<typeof FleetDeviceSchema>;

export const FleetSchema = Type.Object(
  {
    unit: Type.String(),
    time: IsoTime('gateway clock'),
    devices: Type.Array(FleetDeviceSchema, { description: 'alerts first, then by device number' }),
    summary: Type.Object(
      {
        devices: Type.Integer(),
        online: Type.Integer(),
        withAlerts: Type.Integer(),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, title: 'Fleet snapshot', $id: 'Fleet' },
);
export type Fleet = Static<typeof FleetSchema>;

export const RejectReasons = [
  'tls',
  'identity',
  'acl-publish',
  'acl-subscribe',
  'schema',
  'frame-too-large',
] as const;
export type RejectReason = (typeof RejectReasons)[number];

/** A loaded CRL this close to its nextUpdate is said in the gateway's log and in `fleet watch`. */
export const CRL_WARN_MS = 30 * 86_400_000;

export const GatewayStatusSchema = Type.Object(
  {
    unit: Type.String(),
    time: IsoTime('gateway clock'),
    startedAt: IsoTime('when the gateway started'),
    clients: Type.Integer({ minimum: 0 }),
    uploads: Type.Optional(
      Type.Object(
        {
          offers: Type.Integer({ minimum: 0 }),
          chunks: Type.Integer({ minimum: 0 }),
          bytes: Type.Integer({ minimum: 0, description: 'chunk bytes written to incoming files' }),
          stored: Type.Integer({ minimum: 0, description: 'items stored and receipted' }),
          refused: Type.Integer({ minimum: 0 }),
          alerts: Type.Integer({ minimum: 0 }),
        },
        { additionalProperties: false, description: 'issue 6: upload counters since start' },
      ),
    ),
    crls: Type.Optional(
      Type.Array(
        Type.Object(
          {
            unit: Type.String(),
            nextUpdate: Nullable(
              IsoTime(
                'the CRL expires then: after it every client of the unit is refused until it is re-signed',
              ),
            ),
          },
          { additionalProperties: false },
        ),
        { description: "each admitted unit's CRL as loaded, the gateway's own unit first" },
      ),
    ),
    relay: Type.Optional(
      Type.Object(
        {
          connected: Type.Boolean({ description: 'the relay is connected to the center now' }),
          pendingItems: Type.Integer({
            minimum: 0,
            description: 'receipted items the center has not receipted yet',
          }),
          pendingBytes: Type.Integer({ minimum: 0 }),
          oldestPending: Nullable(IsoTime('when the oldest of them was stored here')),
          pendingJournals: Type.Integer({
            minimum: 0,
            description: 'devices whose journal the center has not receipted up to the last line held here',
          }),
          lastRelayedAt: Nullable(IsoTime('the last item or journal the center receipted, since start')),
          lastError: Nullable(
            Type.String({ maxLength: 500, description: "the last relay round's first failure" }),
          ),
        },
        {
          additionalProperties: false,
          description: 'issue 6 item 4, a station with an upstream: its relay to the center',
        },
      ),
    ),
    rejects: Type.Object(
      Object.fromEntries(RejectReasons.map((r) => [r, Type.Integer({ minimum: 0 })])) as Record<
        RejectReason,
        ReturnType<typeof Type.Integer>
      >,
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, title: 'Gateway status', $id: 'GatewayStatus' },
);
export type GatewayStatus = Static<typeof GatewayStatusSchema>;
