/**
 * `recorder flash` (issue 7, item 3): walks a device in maintenance mode through identity
 * (CSR → certificate from the unit CA → installed) and then the signed profile. Every step is
 * idempotent on the device, so running the command again after a pulled cable resumes (uploads
 * continue from what the device holds) or restarts cleanly; a profile is applied only whole, by
 * the device's commit.
 */
import { createHash } from 'node:crypto';
import { csrCommonName } from '../device/identity.ts';
import type { SerialLink } from '../hardware/serial-link.ts';
import { RecorderError } from '../protocol/errors.ts';
import type { JsonHeader, UploadTarget } from '../protocol/service-message.ts';
import { verifySignedProfile } from '../protocol/signed-profile.ts';
import { ServiceClient, type ServiceResponse } from './service-client.ts';
import type { IssueDeviceCertificate } from './unit-ca.ts';

export interface FlashProgress {
  step: 'hello' | 'csr' | 'certificate' | 'identity' | 'profile' | 'commit' | 'done';
  target?: UploadTarget;
  sent?: number;
  total?: number;
  note?: string;
}

export interface FlashOptions {
  link: SerialLink;
  /** The signed profile document's bytes. */
  signedProfile: Buffer;
  /** Issues the device certificate; needed only for a factory-new device. */
  issueDeviceCertificate?: IssueDeviceCertificate;
  /** Unit CA PEM: when given, the profile is checked before a byte is sent. */
  caCertPem?: string;
  /** Bytes of upload data per request. Default: the link's frame size minus room for the header. */
  chunkSize?: number;
  responseTimeoutMs?: number;
  onProgress?: (p: FlashProgress) => void;
  /** Tell the device to leave maintenance mode and start recording service afterwards. Default: false. */
  reboot?: boolean;
}

export interface FlashResult {
  before: JsonHeader;
  after: JsonHeader;
  identityInstalled: boolean;
  profileApplied: boolean;
  /** Bytes of upload data (certificates, profile) the device acknowledged. */
  payloadBytes: number;
  /** Bytes that resuming did not have to send again. */
  resumedBytes: number;
  /** Each upload: bytes sent and the time from put-begin to the commit's answer. */
  uploads: Array<{ target: UploadTarget; bytes: number; sent: number; ms: number }>;
  journalTail: string[];
}

export async function flashDevice(options: FlashOptions): Promise<FlashResult> {
  const client = new ServiceClient(options.link, {
    ...(options.responseTimeoutMs ? { responseTimeoutMs: options.responseTimeoutMs } : {}),
  });
  const progress = options.onProgress ?? (() => undefined);
  const { device, version } = profileClaims(options.signedProfile);
  if (options.caCertPem) {
    const verdict = verifySignedProfile(options.signedProfile, { caCertPem: options.caCertPem, device });
    if (!verdict.ok) throw new RecorderError(verdict.code, `not sending this profile: ${verdict.message}`);
  }
  // Room for the message header (op, id, target, offset) in each frame.
  const chunkSize = options.chunkSize ?? options.link.framePayload - 256;
  let payloadBytes = 0;
  let resumedBytes = 0;
  const uploads: FlashResult['uploads'] = [];

  // A new session: the device forgets sequence numbers from an earlier, interrupted one.
  await options.link.reset();
  progress({ step: 'hello' });
  const before = (await client.request('hello')).header;
  if (before.device !== null && before.device !== device) {
    throw new RecorderError(
      'PROFILE_WRONG_DEVICE',
      `the device on this port is ${String(before.device)}; the profile is for ${device}`,
    );
  }

  const upload = async (target: UploadTarget, bytes: Buffer) => {
    const staged = (
      before.staged as Record<string, { size?: unknown; sha256?: unknown; received?: unknown }>
    )?.[target];
    const result = await uploadAndCommit(client, target, bytes, {
      chunkSize,
      onProgress: progress,
      ...(staged ? { staged } : {}),
    });
    payloadBytes += result.sent;
    resumedBytes += result.resumed;
    uploads.push({ target, bytes: bytes.length, sent: result.sent, ms: result.ms });
    return result.response;
  };

  let identityInstalled = false;
  if (before.identity !== 'provisioned') {
    if (!options.issueDeviceCertificate) {
      throw new RecorderError(
        'CLI_USAGE',
        'this device has no certificate yet: give --ca DIR (the unit CA) to issue one',
      );
    }
    progress({ step: 'csr' });
    const csr = (await client.request('get-csr', { device })).header;
    const csrPem = String(csr.csrPem);
    payloadBytes += Buffer.byteLength(csrPem) + Buffer.byteLength(String(csr.evidencePublicKeyPem));
    // The CA signs only a CSR that verifies and names the device the profile is for.
    const named = csrCommonName(csrPem);
    if (named !== device) {
      throw new RecorderError('IDENTITY_INVALID', `the device's CSR names ${named}, expected ${device}`);
    }
    progress({ step: 'certificate' });
    const issued = await options.issueDeviceCertificate(csrPem, {
      device,
      evidencePublicKeyPem: String(csr.evidencePublicKeyPem),
    });
    await upload(
      'identity',
      Buffer.from(JSON.stringify({ certPem: issued.certPem, chainPem: issued.chainPem })),
    );
    identityInstalled = true;
  }

  let profileApplied = false;
  const inForce = before.profileVersion;
  if (typeof inForce === 'number' && inForce === version) {
    progress({ step: 'done', note: `profile version ${version} is already in force` });
  } else {
    await upload('profile', options.signedProfile);
    profileApplied = true;
  }

  const after = (await client.request('hello')).header;
  const journalTail = (await client.request('journal-tail', { lines: 6 })).header.lines as string[];
  if (options.reboot) {
    await client.request('reboot');
    progress({ step: 'done', note: 'the device reboots into service' });
  }
  progress({ step: 'done' });
  return {
    before,
    after,
    identityInstalled,
    profileApplied,
    payloadBytes,
    resumedBytes,
    uploads,
    journalTail,
  };
}

/**
 * Sends `bytes` in chunks and has the device commit them with the last chunk (one round trip for
 * a small profile). Continues from what the device already holds (`staged`, from hello; or the
 * device's answer to a chunk at the wrong offset): a resumed upload. Throws the device's refusal.
 */
export async function uploadAndCommit(
  client: ServiceClient,
  target: UploadTarget,
  bytes: Buffer,
  options: {
    chunkSize?: number;
    onProgress?: (p: FlashProgress) => void;
    staged?: { size?: unknown; sha256?: unknown; received?: unknown };
  } = {},
): Promise<{ response: ServiceResponse; sent: number; resumed: number; ms: number }> {
  const started = performance.now();
  const chunkSize = options.chunkSize ?? 3840;
  const progress = options.onProgress ?? (() => undefined);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const staged = options.staged;
  let received =
    staged && staged.size === bytes.length && staged.sha256 === sha256 ? Number(staged.received) || 0 : 0;
  let sent = 0;
  progress({ step: target, target, sent: received, total: bytes.length });
  for (;;) {
    const chunk = bytes.subarray(received, received + chunkSize);
    const last = received + chunk.length === bytes.length;
    if (last) progress({ step: 'commit', target });
    const reply = await client.request(
      'put-chunk',
      { target, offset: received, size: bytes.length, sha256, ...(last ? { commit: true } : {}) },
      chunk,
    );
    if (reply.header.committed === true) {
      sent += chunk.length;
      progress({ step: target, target, sent: bytes.length, total: bytes.length });
      return { response: reply, sent, resumed: bytes.length - sent, ms: performance.now() - started };
    }
    const now = Number(reply.header.received);
    if (reply.header.mismatch !== true) sent += now - received;
    received = now;
    progress({ step: target, target, sent: received, total: bytes.length });
  }
}

function profileClaims(bytes: Buffer): { device: string; version: number } {
  let doc: { profile?: { device?: unknown; version?: unknown } };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch (error) {
    throw new RecorderError('PROFILE_INVALID', `the signed profile is not JSON: ${(error as Error).message}`);
  }
  const device = doc.profile?.device;
  const version = doc.profile?.version;
  if (typeof device !== 'string' || typeof version !== 'number') {
    throw new RecorderError('PROFILE_INVALID', 'the signed profile names no device or version');
  }
  return { device, version };
}
