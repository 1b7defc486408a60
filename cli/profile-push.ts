/**
 * Profiles over the network (issue 7 item 4), the technician's side: push a signed profile to a
 * running gateway and wait for the device's answer; build, sign and push an officer assignment.
 *
 * Who connects: by default the gateway's own certificate and key named in its configuration (the
 * command runs on the station, where that key already is, like `recorder gateway run`); from
 * elsewhere, a technician certificate with --cert/--key (`recorder ca issue --role technician`).
 * Both roles may publish on `rec/v1/{unit}/{device}/profile`; the gateway retains a profile only
 * after verifying it (gateway/profile-service.ts).
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { loadGatewayConfig, type GatewayConfig } from '../gateway/config.ts';
import { RecorderError } from '../protocol/errors.ts';
import { profileResultId, type ProfileResultBody } from '../protocol/profile-push.ts';
import type { CommandResult } from '../protocol/schemas/command.ts';
import type { Profile } from '../protocol/schemas/profile.ts';
import { encodeSignedProfile, signProfile, verifySignedProfile } from '../protocol/signed-profile.ts';
import { deviceTopic } from '../protocol/topics.ts';
import { caDirFiles, readCaFile } from './unit-ca.ts';

export interface PushOptions {
  /** the gateway configuration file (`recorder gateway init`) */
  config: string;
  /** client certificate and key (PEM files); default the gateway's own from the configuration */
  cert?: string;
  key?: string;
  /** default mqtts://{listen.host}:{listen.port} of the configuration (0.0.0.0/:: → 127.0.0.1) */
  url?: string;
  /** how long to wait for the device's answer; default 30 000 ms */
  waitMs?: number;
  /** progress lines for a person (stderr) */
  note?: (line: string) => void;
}

export type PushOutcome =
  /** the device answered: applied, already in force, or refused with its reason */
  | {
      kind: 'answered';
      device: string;
      version: number;
      ok: boolean;
      result: ProfileResultBody;
      error?: { code: string; message: string };
    }
  /** refused before anything was sent, or the gateway would not retain it */
  | { kind: 'refused'; device?: string; version?: number; code: string; message: string }
  /** retained by the gateway; the device did not answer in time */
  | { kind: 'no-answer'; device: string; version: number; topic: string };

/** The kept profile of `device` in the gateway's profiles directory, if any. */
export function heldProfile(config: GatewayConfig, device: string): Buffer | undefined {
  if (!config.profilesDir) return undefined;
  const path = join(config.profilesDir, `${device}.signed.json`);
  return existsSync(path) ? readFileSync(path) : undefined;
}

export async function pushProfile(bytes: Buffer, options: PushOptions): Promise<PushOutcome> {
  const config = loadGatewayConfig(options.config);
  const note = options.note ?? (() => undefined);
  // The gateway's check, done here first: a publish it refuses is acknowledged and dropped, and
  // the reason is clearer from here (STACK-NOTES "MQTT").
  const verdict = verifySignedProfile(bytes, { caCertPem: readCaFile(config.tls.ca) });
  if (!verdict.ok) {
    return {
      kind: 'refused',
      ...(verdict.device !== undefined ? { device: verdict.device } : {}),
      ...(verdict.version !== undefined ? { version: verdict.version } : {}),
      code: verdict.code,
      message: verdict.message,
    };
  }
  const { device, version, unit } = verdict.profile;
  if (unit !== config.unit) {
    return {
      kind: 'refused',
      device,
      version,
      code: 'PROFILE_FOREIGN',
      message: `the profile names unit ${unit}; the gateway serves ${config.unit}`,
    };
  }
  const held = heldProfile(config, device);
  if (held && !held.equals(bytes)) {
    const heldVersion = (JSON.parse(held.toString('utf8')) as { profile: Profile }).profile.version;
    if (version <= heldVersion) {
      return {
        kind: 'refused',
        device,
        version,
        code: 'PROFILE_ROLLBACK',
        message: `version ${version} is not higher than version ${heldVersion} the gateway holds for ${device}`,
      };
    }
  }

  const client = await connect(config, options);
  try {
    const profileTopic = deviceTopic('profile', config.unit, device);
    const resultTopic = deviceTopic('cmdResult', config.unit, device);
    const id = profileResultId(bytes);
    let answer: CommandResult | undefined;
    let retained: Buffer | undefined;
    client.on('message', (topic, payload) => {
      if (topic === profileTopic) retained = payload;
      if (topic !== resultTopic) return;
      try {
        const r = JSON.parse(payload.toString('utf8')) as CommandResult;
        if (r.id === id) answer = r;
      } catch {
        // not ours
      }
    });
    // Listen before publishing: the device may answer within milliseconds.
    await client.subscribeAsync(resultTopic, { qos: 1 });
    note(`pushing profile version ${version} for ${device} to ${profileTopic}`);
    await client.publishAsync(profileTopic, bytes, { qos: 1, retain: true });
    // Confirm the gateway retained these bytes (it acknowledges a refused profile and drops it).
    const confirmed = await until(async () => {
      if (answer) return true;
      retained = undefined;
      await client.subscribeAsync(profileTopic, { qos: 1 });
      await sleep(300);
      await client.unsubscribeAsync(profileTopic);
      const got = retained as Buffer | undefined;
      return got !== undefined && got.equals(bytes);
    }, 5000);
    if (!confirmed && !answer) {
      return {
        kind: 'refused',
        device,
        version,
        code: 'PROFILE_PUSH_REFUSED',
        message: 'the gateway did not retain the profile; see its log for the reason',
      };
    }
    note(
      `retained by the gateway; waiting up to ${Math.round((options.waitMs ?? 30_000) / 1000)} s for ${device} to answer`,
    );
    await until(async () => {
      await sleep(50);
      return answer !== undefined;
    }, options.waitMs ?? 30_000);
    if (!answer) return { kind: 'no-answer', device, version, topic: profileTopic };
    return {
      kind: 'answered',
      device,
      version,
      ok: answer.ok,
      result: (answer.result ?? {
        outcome: answer.ok ? 'applied' : 'refused',
      }) as unknown as ProfileResultBody,
      ...(answer.error ? { error: answer.error } : {}),
    };
  } finally {
    await client.endAsync();
  }
}

export interface AssignOptions extends PushOptions {
  device: string;
  officer: string;
  /** unit CA directory with the profile signer; default the directory of the configuration's CA certificate */
  ca?: string;
  /** the current profile (signed or plain JSON); default the one the gateway holds for the device */
  profile?: string;
}

/** The device's current profile with `officer` first, the version raised by one, signed. */
export function assignOfficer(options: AssignOptions): { bytes: Buffer; profile: Profile } {
  const config = loadGatewayConfig(options.config);
  let base: Record<string, unknown>;
  if (options.profile) {
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(readFileSync(options.profile, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new RecorderError(
        'PROFILE_INVALID',
        `cannot read ${options.profile}: ${(error as Error).message}`,
      );
    }
    base = (typeof doc.signature === 'object' ? doc.profile : doc) as Record<string, unknown>;
  } else {
    const held = heldProfile(config, options.device);
    if (!held) {
      throw new RecorderError(
        'PROFILE_NONE',
        `the gateway holds no profile for ${options.device}; give the current one with --profile FILE (the signed profile it was flashed with)`,
      );
    }
    base = (JSON.parse(held.toString('utf8')) as { profile: Record<string, unknown> }).profile;
  }
  if (base?.device !== options.device) {
    throw new RecorderError(
      'PROFILE_WRONG_DEVICE',
      `the profile is for ${String(base?.device)}, not ${options.device}`,
    );
  }
  const officers = Array.isArray(base.officers) ? (base.officers as string[]) : [];
  const next = {
    ...base,
    version: Number(base.version) + 1,
    // R15: the first officer is the one the device records for; the others stay assignable.
    officers: [options.officer, ...officers.filter((o) => o !== options.officer)],
  };
  const files = caDirFiles(options.ca ?? join(config.tls.ca, '..'));
  const doc = signProfile(next, {
    keyPem: readCaFile(files.signerKey),
    certPem: readCaFile(files.signerCert),
  });
  return { bytes: encodeSignedProfile(doc), profile: doc.profile };
}

async function connect(config: GatewayConfig, options: PushOptions): Promise<MqttClient> {
  const certPath = options.cert ?? config.tls.cert;
  const keyPath = options.key ?? config.tls.key;
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new RecorderError('CLI_USAGE', 'give --cert and --key together');
  }
  const cert = readCaFile(certPath);
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(new X509Certificate(cert).subject)?.[1];
  if (!cn) throw new RecorderError('CA_INVALID', `${certPath} names no CN`);
  const host = ['0.0.0.0', '::'].includes(config.listen.host) ? '127.0.0.1' : config.listen.host;
  const url = options.url ?? `mqtts://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}`;
  const client = mqtt.connect(url, {
    protocolVersion: 4,
    clientId: `${cn}:push-${process.pid}`,
    clean: true,
    cert,
    key: readCaFile(keyPath),
    ca: readCaFile(config.tls.ca),
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  return new Promise((resolve, reject) => {
    const fail = (error?: Error) => {
      client.end(true);
      reject(
        new RecorderError(
          'MQTT_NOT_CONNECTED',
          `cannot connect to the gateway at ${url}: ${error?.message ?? 'connection closed'}; is \`recorder gateway run\` running?`,
        ),
      );
    };
    client.once('error', fail);
    client.once('close', () => fail());
    client.once('connect', () => {
      client.off('error', fail);
      client.removeAllListeners('close');
      resolve(client);
    });
  });
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) if (await check()) return true;
  return false;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `30s`, `500ms`, `2m`, or a number of seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new RecorderError('CLI_USAGE', `--wait must look like 30s, 500ms or 2m, got ${text}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
}
