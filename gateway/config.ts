/**
 * The gateway's settings file (`recorder gateway init` writes it, `recorder gateway run` reads it).
 * One TypeBox schema gives the type, the defaults and every problem at once (STYLE.md
 * "Configuration and profiles").
 */
import { Type, type Static } from '@sinclair/typebox';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { RecorderError } from '../protocol/errors.ts';
import { parseWithSchema } from '../protocol/schemas/validate.ts';

export const FleetThresholdsSchema = Type.Object(
  {
    publishIntervalMs: Type.Integer({ minimum: 100, default: 10_000, description: 'fleet snapshot period' }),
    offlineAfterMs: Type.Integer({
      minimum: 1000,
      default: 180_000,
      description: 'a device silent this long is offline even without its last will',
    }),
    batteryLowPercent: Type.Integer({ minimum: 0, maximum: 100, default: 20 }),
    storageLowMinutes: Type.Integer({ minimum: 0, default: 60, description: 'minutes of recording left' }),
    clockDriftMs: Type.Integer({ minimum: 0, default: 3000, description: 'issue 5: alert beyond 3 s' }),
  },
  { additionalProperties: false },
);
export type FleetThresholds = Static<typeof FleetThresholdsSchema>;

const UnitName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' });

export const GatewayConfigSchema = Type.Object(
  {
    format: Type.Literal('recorder-gateway/1'),
    unit: UnitName,
    listen: Type.Object(
      {
        host: Type.String({
          default: '127.0.0.1',
          description: 'R14: bind to the enforcement VPN address only',
        }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8883, description: '0: any free port' }),
      },
      { additionalProperties: false, default: {} },
    ),
    tls: Type.Object(
      {
        cert: Type.String({ description: "the gateway's certificate (PEM file)" }),
        key: Type.String({ description: 'its private key (PEM file, mode 0600)' }),
        ca: Type.String({ description: 'the unit CA certificate: clients must chain to it' }),
        crl: Type.String({ description: "the CA's crl.pem; re-read when it changes" }),
      },
      { additionalProperties: false },
    ),
    maxFrameBytes: Type.Integer({
      minimum: 1024,
      maximum: 268_435_455,
      default: 327_680,
      description: 'largest MQTT packet accepted; bigger ones close the connection before they are buffered',
    }),
    slowClientTimeoutMs: Type.Integer({
      minimum: 0,
      default: 10_000,
      description:
        'a client whose connection accepts no more bytes for this long is disconnected; 0 waits for ever. ' +
        "Until then every message to it waits, and once aedes' 100 concurrent deliveries are waiting, " +
        'routing stops for every client',
    }),
    statusIntervalMs: Type.Integer({ minimum: 100, default: 10_000, description: 'gateway/status period' }),
    fleet: Type.Object(FleetThresholdsSchema.properties, { additionalProperties: false, default: {} }),
    // Issue 6 (uploads): the write-once evidence store and the key that signs receipts.
    evidence: Type.Object(
      {
        dir: Type.String({
          default: 'evidence',
          description: 'the evidence store: write-once objects, incoming/ and index.sqlite',
        }),
        receiptKey: Type.String({
          default: 'receipt.key.pem',
          description:
            "the gateway's Ed25519 receipt-signing key (PEM, mode 0600); devices pin its public half",
        }),
        role: Type.Union([Type.Literal('station'), Type.Literal('center')], {
          default: 'station',
          description: "a unit's collection station, or the provincial center",
        }),
        centerKey: Type.Optional(
          Type.String({
            description:
              'center role only: the RSA private key that decrypts each segment at ingest to check its plaintext hash',
          }),
        ),
        maxItemBytes: Type.Integer({
          minimum: 1,
          default: 4 * 1024 ** 3,
          description: 'largest item accepted',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    // Issue 6 item 4: a station relays receipted evidence and journals to the center's gateway.
    upstream: Type.Optional(
      Type.Object(
        {
          url: Type.String({ pattern: '^mqtts://[^/\\s]+:\\d{1,5}$', description: "the center's gateway" }),
          cert: Type.String({ description: "this station's gateway certificate (PEM file)" }),
          key: Type.String({ description: 'its private key (PEM file, mode 0600)' }),
          ca: Type.String({ description: "the CA the center's gateway certificate chains to" }),
          receiptKey: Type.String({ description: "the center's receipt-signing public key (PEM file)" }),
          purgeAfterDays: Type.Integer({
            minimum: 0,
            default: 30,
            description:
              'days a relayed item stays at the station after the center receipted it; 0 keeps it for ever',
          }),
        },
        { additionalProperties: false },
      ),
    ),
    // Issue 6 item 4: a provincial center takes the relays of several units' stations.
    units: Type.Optional(
      Type.Array(
        Type.Object(
          {
            unit: UnitName,
            ca: Type.String({ description: "that unit's CA certificate (PEM file)" }),
            crl: Type.String({ description: "that unit CA's crl.pem; re-read when it changes" }),
          },
          { additionalProperties: false },
        ),
        {
          minItems: 1,
          description:
            'center role: the other units whose stations it admits, each under the ACL of its own unit ' +
            '(tls.ca and tls.crl are those of the unit named by `unit`)',
        },
      ),
    ),
    // Issue 7 item 4.
    profilesDir: Type.Optional(
      Type.String({
        description:
          'where the last signed profile pushed for each device is kept and re-published from on start; default: profiles/ next to the configuration file',
      }),
    ),
  },
  { additionalProperties: false, title: 'Gateway configuration' },
);
export type GatewayConfig = Static<typeof GatewayConfigSchema>;

export function parseGatewayConfig(value: unknown): GatewayConfig {
  const config = parseWithSchema(
    GatewayConfigSchema,
    value,
    'GATEWAY_CONFIG_INVALID',
    'the gateway configuration',
  );
  if (config.units && config.evidence.role !== 'center') {
    throw new RecorderError(
      'GATEWAY_CONFIG_INVALID',
      'units: only a gateway in the center role admits stations of other units (evidence.role "center")',
    );
  }
  const names = [config.unit, ...(config.units ?? []).map((u) => u.unit)];
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice) throw new RecorderError('GATEWAY_CONFIG_INVALID', `units: unit ${twice} is named twice`);
  // Device ids begin with their unit's name and '-' there (gateway/upload-receiver.ts): with
  // units HN and HN-CS, HN-CS-0001 could be either's.
  for (const a of names) {
    const b = names.find((n) => a.startsWith(`${n}-`));
    if (b) {
      throw new RecorderError(
        'GATEWAY_CONFIG_INVALID',
        `units: unit ${a} begins with unit ${b} and '-', so a device id such as ${a}-0001 could be of either`,
      );
    }
  }
  return config;
}

/** Reads a config file; relative TLS paths are taken relative to the file. */
export function loadGatewayConfig(path: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new RecorderError('FILE_NOT_FOUND', `cannot read the gateway configuration ${path}`, { path });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new RecorderError('GATEWAY_CONFIG_INVALID', `${path} is not JSON: ${(error as Error).message}`);
  }
  const config = parseGatewayConfig(json);
  const base = dirname(resolve(path));
  for (const k of ['cert', 'key', 'ca', 'crl'] as const) config.tls[k] = resolve(base, config.tls[k]);
  config.evidence.dir = resolve(base, config.evidence.dir);
  config.evidence.receiptKey = resolve(base, config.evidence.receiptKey);
  if (config.evidence.centerKey) config.evidence.centerKey = resolve(base, config.evidence.centerKey);
  if (config.upstream)
    for (const k of ['cert', 'key', 'ca', 'receiptKey'] as const)
      config.upstream[k] = resolve(base, config.upstream[k]);
  for (const u of config.units ?? []) for (const k of ['ca', 'crl'] as const) u[k] = resolve(base, u[k]);
  config.profilesDir = resolve(base, config.profilesDir ?? 'profiles');
  return config;
}
