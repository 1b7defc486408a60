/**
 * The device profile: everything that makes one recorder this unit's device number D, carried by
 * officer O, recording with these settings. One schema gives the TypeScript type and the JSON
 * Schema (`recorder profile schema`); `parseProfile` reports every problem at once, then the checks
 * a schema cannot express.
 */
import { Type, type Static } from '@sinclair/typebox';
import { createPublicKey } from 'node:crypto';
import { centerKeyProblem } from '../evidence-format.ts';
import { invalid, parseWithSchema, type SchemaProblem } from './validate.ts';

const Id = (description: string) =>
  Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description });

const Pin = Type.Object(
  {
    line: Type.Integer({
      minimum: 0,
      maximum: 4095,
      description: 'GPIO line offset (gpiod) or sysfs number (onoff)',
    }),
    activeLow: Type.Boolean({ default: false, description: 'the line reads 0 when pressed / lights at 0' }),
  },
  { additionalProperties: false },
);

export const CaptureSchema = Type.Object(
  {
    source: Type.Union([Type.Literal('sim'), Type.Literal('v4l2')], {
      default: 'sim',
      description: 'sim: videotestsrc/audiotestsrc; v4l2: a camera and ALSA microphone on the board',
    }),
    videoDevice: Type.String({ default: '/dev/video0', description: 'V4L2 device (source v4l2)' }),
    audioDevice: Type.String({ default: 'default', description: 'ALSA device (source v4l2)' }),
    width: Type.Integer({ minimum: 160, maximum: 3840, default: 1280 }),
    height: Type.Integer({ minimum: 120, maximum: 2160, default: 720 }),
    fps: Type.Integer({ minimum: 1, maximum: 60, default: 30 }),
    bitrateKbps: Type.Integer({ minimum: 100, maximum: 50000, default: 4000 }),
    encoder: Type.String({
      default: 'x264enc',
      pattern: '^[a-z0-9_]+$',
      description:
        'GStreamer H.264 encoder element: x264enc (software), v4l2h264enc (Raspberry Pi), mpph264enc (Rockchip)',
    }),
    audio: Type.Boolean({ default: true, description: 'record audio with video' }),
    segmentSeconds: Type.Integer({
      minimum: 1,
      maximum: 600,
      default: 10,
      description: 'length of one sealed segment',
    }),
    prerecordSeconds: Type.Integer({
      minimum: 0,
      maximum: 600,
      default: 30,
      description: 'kept before a press (R2)',
    }),
    postrecordSeconds: Type.Integer({
      minimum: 0,
      maximum: 600,
      default: 10,
      description: 'kept after stop',
    }),
    maxEventMinutes: Type.Integer({
      minimum: 1,
      maximum: 1440,
      default: 120,
      description: 'roll over to a new event after this',
    }),
  },
  { additionalProperties: false },
);

export const ProfileSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    format: Type.Literal('recorder-profile/1', { description: 'profile format' }),
    version: Type.Integer({
      minimum: 1,
      description: 'profile version; a device never goes back to a lower one',
    }),
    kind: Type.Union([Type.Literal('body'), Type.Literal('mobile'), Type.Literal('fixed')], {
      default: 'body',
      description: 'body recorder, mobile terminal, or fixed camera in an interview/hearing room (R21)',
    }),
    unit: Id('enforcement unit code'),
    device: Id('device number, burned into the watermark'),
    officers: Type.Array(Id('officer number'), {
      minItems: 1,
      description: 'assigned officers; the first is the default (R15)',
    }),
    capture: CaptureSchema,
    watermark: Type.Object(
      {
        template: Type.String({
          default: '{time} {device} {officer} {position} {clock}',
          description: 'placeholders: {time} {device} {officer} {position} {clock}',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    announcement: Type.Object(
      {
        text: Type.String({
          minLength: 1,
          default: '执法记录仪已开始录音录像。Recording has started.',
          description: 'R4, SX 17',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    reminderMinutes: Type.Integer({
      minimum: 0,
      default: 10,
      description: 'remind the officer while recording; 0 = never',
    }),
    uploadDeadlineHours: Type.Integer({
      minimum: 1,
      maximum: 168,
      default: 24,
      description: 'HN 23: 24 h; SX 19: 48 h',
    }),
    storage: Type.Object(
      {
        evidenceDir: Type.String({ minLength: 1, description: 'encrypted evidence (flash)' }),
        spoolDir: Type.String({ minLength: 1, description: 'plaintext segments (RAM, tmpfs)' }),
        reserveMB: Type.Integer({
          minimum: 0,
          default: 2048,
          description: 'warn below this much free space',
        }),
        minimumMB: Type.Integer({
          minimum: 0,
          default: 512,
          description: 'refuse to start recording below this',
        }),
      },
      { additionalProperties: false },
    ),
    centerPublicKey: Type.String({
      minLength: 1,
      description: 'PEM public key of the evidence center that may decrypt evidence',
    }),
    hardware: Type.Object(
      {
        gpio: Type.Object(
          {
            driver: Type.Union([Type.Literal('sim'), Type.Literal('onoff'), Type.Literal('gpiod')], {
              default: 'sim',
            }),
            chip: Type.String({ default: 'gpiochip0', description: 'gpiod chip' }),
          },
          { additionalProperties: false, default: {} },
        ),
        buttons: Type.Partial(
          Type.Object({ record: Pin, mark: Pin, photo: Pin, audio: Pin }, { additionalProperties: false }),
          {
            default: {},
          },
        ),
        indicators: Type.Partial(
          Type.Object(
            {
              'led-power': Pin,
              'led-audio': Pin,
              'led-video': Pin,
              'led-status': Pin,
              vibration: Pin,
              buzzer: Pin,
            },
            { additionalProperties: false },
          ),
          { default: {} },
        ),
        press: Type.Object(
          {
            debounceMs: Type.Integer({ minimum: 0, maximum: 500, default: 30 }),
            longMs: Type.Integer({
              minimum: 500,
              maximum: 10000,
              default: 1500,
              description: 'a long press stops recording',
            }),
            doubleMs: Type.Integer({
              minimum: 100,
              maximum: 2000,
              default: 400,
              description: 'window for a double press',
            }),
          },
          { additionalProperties: false, default: {} },
        ),
        gnss: Type.Object(
          {
            driver: Type.Union([Type.Literal('sim'), Type.Literal('serial'), Type.Literal('none')], {
              default: 'sim',
            }),
            port: Type.String({ default: '/dev/ttyS1' }),
            baud: Type.Integer({ default: 9600 }),
          },
          { additionalProperties: false, default: {} },
        ),
        battery: Type.Object(
          {
            driver: Type.Union([Type.Literal('sim'), Type.Literal('sysfs')], { default: 'sim' }),
            path: Type.String({ default: '/sys/class/power_supply/battery' }),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    // Issue 5 (gateway and fleet telemetry): where the device reports, with which TLS identity.
    gateway: Type.Optional(
      Type.Object(
        {
          url: Type.String({
            pattern: '^mqtts://[^/\\s]+:\\d{1,5}$',
            description: 'the station gateway, mqtts://HOST:PORT (R14: over the enforcement VPN)',
          }),
          cert: Type.String({ minLength: 1, description: "the device's TLS certificate (PEM file)" }),
          key: Type.String({ minLength: 1, description: 'its private key (PEM file, mode 0600)' }),
          ca: Type.String({ minLength: 1, description: 'the unit CA certificate (PEM file)' }),
          statusIntervalSeconds: Type.Integer({
            minimum: 5,
            maximum: 3600,
            default: 60,
            description: 'publish the status at least this often (it is also sent on every change)',
          }),
          // Issue 6 (uploads over MQTT, branch upload-mqtt): without a pinned receipt key uploads are off.
          receiptKey: Type.Optional(
            Type.String({
              minLength: 1,
              description:
                "the gateway's receipt-signing public key (PEM file, `recorder gateway init` writes receipt.pub.pem); " +
                'pinned: a receipt it does not verify deletes nothing. Without it uploads are off',
            }),
          ),
          upload: Type.Optional(
            Type.Object(
              {
                chunkBytes: Type.Integer({
                  minimum: 1024,
                  // The gateway's default frame limit (327 680 bytes) minus the PUBLISH overhead
                  // (protocol/upload-mqtt.ts UPLOAD_FRAME_OVERHEAD): a bigger chunk would be refused.
                  maximum: 327_168,
                  default: 262_144,
                  description: 'bytes per upload/data message; must fit the gateway maxFrameBytes minus 512',
                }),
                window: Type.Integer({
                  minimum: 1,
                  maximum: 64,
                  default: 8,
                  description: 'chunks in flight before waiting for a PUBACK',
                }),
              },
              {
                additionalProperties: false,
                description: 'upload tuning (issue 6); defaults apply when absent',
              },
            ),
          ),
        },
        { additionalProperties: false, description: 'MQTT telemetry to the station gateway (issue 5)' },
      ),
    ),
  },
  {
    additionalProperties: false,
    title: 'Recorder device profile',
    $id: 'https://recorder.invalid/schemas/profile.json',
  },
);

export type Profile = Static<typeof ProfileSchema>;
export type CaptureSettings = Static<typeof CaptureSchema>;

/** Validates a parsed profile document; throws PROFILE_INVALID listing every problem. */
export function parseProfile(value: unknown): Profile {
  const profile = parseWithSchema(ProfileSchema, value, 'PROFILE_INVALID', 'profile');
  const problems = profileRuleProblems(profile);
  if (problems.length > 0) throw invalid('PROFILE_INVALID', 'profile', problems);
  return profile;
}

/** The checks a schema cannot express. */
export function profileRuleProblems(profile: Profile): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const pins = new Map<number, string>();
  for (const [group, map] of [
    ['buttons', profile.hardware.buttons],
    ['indicators', profile.hardware.indicators],
  ] as const) {
    for (const [name, pin] of Object.entries(map)) {
      if (!pin) continue;
      const other = pins.get(pin.line);
      if (other)
        problems.push({
          path: `/hardware/${group}/${name}/line`,
          message: `line ${pin.line} is already used by ${other}`,
        });
      else pins.set(pin.line, `${group}.${name}`);
    }
  }
  const c = profile.capture;
  if (c.maxEventMinutes * 60 < c.segmentSeconds) {
    problems.push({
      path: '/capture/maxEventMinutes',
      message: 'an event must be at least one segment long',
    });
  }
  if (c.width % 2 || c.height % 2)
    problems.push({ path: '/capture/width', message: 'width and height must be even (I420)' });
  if (profile.storage.minimumMB > profile.storage.reserveMB) {
    problems.push({ path: '/storage/minimumMB', message: 'the minimum must not exceed the reserve' });
  }
  if (!/-----BEGIN PUBLIC KEY-----/.test(profile.centerPublicKey)) {
    problems.push({
      path: '/centerPublicKey',
      message: 'must be a PEM public key (-----BEGIN PUBLIC KEY-----)',
    });
  } else {
    // Sealing wraps every segment key to this key (RSA-OAEP-SHA256): check it can, now.
    let problem: string | null;
    try {
      problem = centerKeyProblem(createPublicKey(profile.centerPublicKey));
    } catch (error) {
      problem = `cannot be read as a PEM public key: ${(error as Error).message}`;
    }
    if (problem) problems.push({ path: '/centerPublicKey', message: problem });
  }
  if (new Set(profile.officers).size !== profile.officers.length) {
    problems.push({ path: '/officers', message: 'an officer is listed twice' });
  }
  return problems;
}
