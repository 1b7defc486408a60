/**
 * The device's service port in maintenance mode (issue 7, item 2): answers the technician's tool
 * over a SerialLink. Commands: hello, get-csr, put-begin/put-chunk (chunked, resumable uploads),
 * commit (identity or profile), journal-tail, reboot.
 *
 * Trust: a factory-new device pins the unit CA that comes at the end of the chain with its own
 * certificate (the technician's tool and the factory cable are the trusted path, as for any
 * first provisioning); from then on profiles must chain to that CA and a new identity is refused.
 */
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  openSync,
  closeSync,
  fsyncSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { SerialLink } from '../hardware/serial-link.ts';
import { RecorderError, isRecorderError } from '../protocol/errors.ts';
import { decodeServiceMessage, encodeServiceMessage, type JsonHeader } from '../protocol/service-message.ts';
import { MAX_SIGNED_PROFILE_BYTES } from '../protocol/signed-profile.ts';
import { replaceFileDurable, writeNewFileDurable } from './fs-durable.ts';
import { checkDeviceCertificate, createTlsKeyAndCsr, csrFor } from './identity.ts';
import { JournalWriter } from './journal-writer.ts';
import { keyFingerprint, loadOrCreateSigningKey, loadPrivateKey, type SigningKey } from './keys.ts';
import { ProfileStore } from './profile-store.ts';
import type { StatePaths } from './state-paths.ts';

export const FIRMWARE_VERSION = '0.1.0';
/** Largest identity upload (certificate + chain as JSON). */
const MAX_IDENTITY_BYTES = 32 * 1024;
/** Journal tail answers stay within one frame. */
const MAX_TAIL_BYTES = 3000;

export interface ServicePortOptions {
  link: SerialLink;
  paths: StatePaths;
  /** Firmware version reported by hello. Default: FIRMWARE_VERSION. */
  firmware?: string;
  now?: () => Date;
  /** Called once a reboot into service was acknowledged. */
  onReboot?: () => void;
  log?: (line: string) => void;
}

interface IdentityFile {
  device: string;
  state: 'csr' | 'provisioned';
}

interface Upload {
  size: number;
  sha256: string;
}

export class ServicePort {
  private readonly paths: StatePaths;
  private readonly evidenceKey: SigningKey;
  private journal: JournalWriter | null = null;
  private uploads = new Map<string, Upload>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly now: () => Date;
  private link: SerialLink;

  private constructor(private readonly options: ServicePortOptions) {
    this.paths = options.paths;
    this.link = options.link;
    this.now = options.now ?? (() => new Date());
    mkdirSync(this.paths.root, { recursive: true });
    // The evidence key is made at the first start of a factory-new device (device/keys.ts).
    this.evidenceKey = loadOrCreateSigningKey(this.paths.privateKey, this.paths.publicKey);
  }

  static async start(options: ServicePortOptions): Promise<ServicePort> {
    const port = new ServicePort(options);
    const identity = port.identity();
    if (identity) await port.openJournal(identity.device);
    await port.journal?.append('maintenance-mode', { firmware: port.firmware });
    if (identity?.state === 'provisioned')
      await port.profileStore(identity.device).reconcile(port.lastAcceptedSha256());
    port.link.on('message', port.onMessage);
    return port;
  }

  get firmware(): string {
    return this.options.firmware ?? FIRMWARE_VERSION;
  }

  /** A new line after the old one closed (the cable was pulled and plugged in again). */
  attach(link: SerialLink): void {
    this.link.off('message', this.onMessage);
    this.link = link;
    link.on('message', this.onMessage);
  }

  private readonly onMessage = (payload: Buffer) => {
    // One request at a time, in arrival order.
    this.chain = this.chain.then(() => this.handle(payload)).catch((e) => this.options.log?.(String(e)));
  };

  async close(): Promise<void> {
    this.link.off('message', this.onMessage);
    await this.chain;
    await this.journal?.close();
    this.journal = null;
  }

  private identity(): IdentityFile | null {
    if (!existsSync(this.paths.identity)) return null;
    return JSON.parse(readFileSync(this.paths.identity, 'utf8')) as IdentityFile;
  }

  private async openJournal(device: string): Promise<void> {
    this.journal ??= await JournalWriter.open({
      path: this.paths.journal,
      device,
      privateKey: this.evidenceKey.privateKey,
      now: this.now,
    });
  }

  private async handle(payload: Buffer): Promise<void> {
    let id: unknown = null;
    let reply: { header: JsonHeader; data?: Buffer };
    try {
      const { header, data } = decodeServiceMessage(payload);
      id = header.id ?? null;
      reply = await this.dispatch(String(header.op), header, data);
    } catch (error) {
      const coded = isRecorderError(error)
        ? error
        : new RecorderError('SERVICE_PROTOCOL', `the device failed: ${(error as Error).message}`);
      reply = { header: { ok: false, code: coded.code, message: coded.detail } };
    }
    let bytes = encodeServiceMessage({ id, ...reply.header }, reply.data);
    if (bytes.length > this.link.framePayload) {
      bytes = encodeServiceMessage({
        id,
        ok: false,
        code: 'SERVICE_PROTOCOL',
        message: `the answer (${bytes.length} bytes) does not fit in one frame`,
      });
    }
    try {
      await this.link.send(bytes);
    } catch (error) {
      // The cable was pulled: the tool asks again when it is back.
      this.options.log?.(`reply not delivered: ${(error as Error).message}`);
    }
    if (reply.header.rebooting === true) this.options.onReboot?.();
  }

  private async dispatch(
    op: string,
    h: JsonHeader,
    data: Buffer,
  ): Promise<{ header: JsonHeader; data?: Buffer }> {
    switch (op) {
      case 'hello':
        return { header: { ok: true, ...this.hello() } };
      case 'get-csr':
        return { header: { ok: true, ...(await this.getCsr(h)) } };
      case 'put-begin':
        return { header: { ok: true, ...(await this.putBegin(h)) } };
      case 'put-chunk':
        return { header: { ok: true, ...(await this.putChunk(h, data)) } };
      case 'commit':
        return { header: await this.commit(h) };
      case 'journal-tail':
        return { header: { ok: true, lines: this.journalTail(Number(h.lines ?? 10)) } };
      case 'reboot':
        return { header: await this.reboot() };
      default:
        throw new RecorderError('SERVICE_PROTOCOL', `unknown command ${JSON.stringify(op)}`);
    }
  }

  hello(): JsonHeader {
    const identity = this.identity();
    const store = identity?.state === 'provisioned' ? this.profileStore(identity.device) : null;
    const profile = store?.current() ?? null;
    const fingerprint = (path: string, kind: 'key' | 'cert') => {
      if (!existsSync(path)) return null;
      const pem = readFileSync(path, 'utf8');
      return kind === 'key'
        ? keyFingerprint(createPublicKey(createPrivateKey(pem)))
        : createHash('sha256')
            .update(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'))
            .digest('hex');
    };
    return {
      mode: 'maintenance',
      firmware: this.firmware,
      device: identity?.device ?? null,
      identity: identity?.state ?? 'none',
      profileVersion: profile?.version ?? null,
      unit: profile?.unit ?? null,
      officers: profile?.officers ?? [],
      fingerprints: {
        evidenceKey: this.evidenceKey.fingerprint,
        tlsKey: fingerprint(this.paths.tlsKey, 'key'),
        tlsCert: fingerprint(this.paths.tlsCert, 'cert'),
        unitCa: fingerprint(this.paths.caCert, 'cert'),
      },
      journalEntries: this.journal ? this.journal.head.nextSeq : 0,
      staged: this.staged(),
    };
  }

  private async getCsr(h: JsonHeader): Promise<JsonHeader> {
    const device = typeof h.device === 'string' ? h.device : '';
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(device)) {
      throw new RecorderError(
        'SERVICE_PROTOCOL',
        `get-csr needs a device number, got ${JSON.stringify(h.device)}`,
      );
    }
    const identity = this.identity();
    if (identity && identity.device !== device) {
      throw new RecorderError(
        'SERVICE_REFUSED',
        `this device is already numbered ${identity.device}; it cannot become ${device} without a factory reset`,
      );
    }
    if (identity?.state === 'provisioned') {
      throw new RecorderError('SERVICE_REFUSED', `device ${device} already has its certificate`);
    }
    if (!identity || !existsSync(this.paths.tlsCsr)) {
      // Resuming after a pulled cable returns the same CSR: the key is made once.
      const { keyPem, csrPem } = existsSync(this.paths.tlsKey)
        ? { keyPem: readFileSync(this.paths.tlsKey, 'utf8'), csrPem: null }
        : await createTlsKeyAndCsr(device);
      if (!existsSync(this.paths.tlsKey)) writeNewFileDurable(this.paths.tlsKey, keyPem, 0o600);
      const csr = csrPem ?? csrFor(device, keyPem);
      mkdirSync(dirname(this.paths.tlsCsr), { recursive: true });
      replaceFileDurable(this.paths.tlsCsr, csr);
      if (!identity) {
        replaceFileDurable(this.paths.identity, JSON.stringify({ device, state: 'csr' }));
        await this.openJournal(device);
        await this.journal!.append('identity-assigned', {
          device,
          evidenceKey: this.evidenceKey.fingerprint,
          tlsKey: keyFingerprint(createPublicKey(createPrivateKey(keyPem))),
        });
      }
    }
    return {
      csrPem: readFileSync(this.paths.tlsCsr, 'utf8'),
      evidencePublicKeyPem: this.evidenceKey.publicKeyPem,
    };
  }

  private stagingFile(target: string): string {
    if (target !== 'identity' && target !== 'profile') {
      throw new RecorderError('SERVICE_PROTOCOL', `unknown upload target ${JSON.stringify(target)}`);
    }
    return join(this.paths.stagingDir, `${target}.part`);
  }

  private async putBegin(h: JsonHeader): Promise<JsonHeader> {
    const target = String(h.target);
    const file = this.stagingFile(target);
    const size = Number(h.size);
    const sha256 = String(h.sha256);
    const limit = target === 'profile' ? MAX_SIGNED_PROFILE_BYTES : MAX_IDENTITY_BYTES;
    if (!Number.isSafeInteger(size) || size < 0)
      throw new RecorderError('SERVICE_PROTOCOL', 'put-begin needs a size');
    if (size > limit) {
      // Refused before a byte crosses the line, and journaled like every refused profile.
      const error = new RecorderError(
        'PROFILE_TOO_LARGE',
        `${target} of ${size} bytes exceeds the limit of ${limit}`,
      );
      if (target === 'profile') {
        await this.journal?.append('profile-refused', {
          code: error.code,
          reason: error.detail,
          source: 'service-port',
          sha256,
          bytes: size,
        });
      }
      throw error;
    }
    mkdirSync(this.paths.stagingDir, { recursive: true });
    const meta = `${file}.meta`;
    const same = existsSync(meta) && readFileSync(meta, 'utf8') === `${size} ${sha256}`;
    if (!same) {
      rmSync(file, { force: true });
      replaceFileDurable(meta, `${size} ${sha256}`);
    }
    const received = existsSync(file) ? Math.min(statSync(file).size, size) : 0;
    this.uploads.set(target, { size, sha256 });
    return { received, resumed: same && received > 0 };
  }

  /**
   * Appends one chunk. A chunk that names `size` and `sha256` opens (or continues) the upload
   * itself, and the last one may carry `commit: true`: a small profile then crosses in one round
   * trip instead of three (bench/serial-flash.ts).
   */
  private async putChunk(h: JsonHeader, data: Buffer): Promise<JsonHeader> {
    const target = String(h.target);
    const file = this.stagingFile(target);
    let upload = this.uploads.get(target);
    if (h.size !== undefined && (upload?.size !== Number(h.size) || upload?.sha256 !== String(h.sha256))) {
      await this.putBegin(h);
      upload = this.uploads.get(target);
    }
    if (!upload) throw new RecorderError('SERVICE_PROTOCOL', `put-chunk for ${target} without put-begin`);
    const have = existsSync(file) ? statSync(file).size : 0;
    if (Number(h.offset) !== have) {
      // Not an error the tool cannot fix: it continues from what the device holds.
      return { received: have, mismatch: true };
    }
    if (have + data.length > upload.size)
      throw new RecorderError('SERVICE_PROTOCOL', 'chunk goes past the declared size');
    await appendFile(file, data);
    const received = have + data.length;
    if (h.commit === true && received === upload.size) {
      const result = await this.commit({ target });
      if (result.ok !== true) return { ...result, received };
      return { ...result, received, committed: true };
    }
    return { received };
  }

  /** Uploads in progress, so a tool can resume from hello alone. */
  private staged(): JsonHeader {
    const out: JsonHeader = {};
    for (const target of ['identity', 'profile']) {
      const file = this.stagingFile(target);
      const meta = `${file}.meta`;
      if (!existsSync(meta)) continue;
      const [size, sha256] = readFileSync(meta, 'utf8').split(' ');
      out[target] = { size: Number(size), sha256, received: existsSync(file) ? statSync(file).size : 0 };
    }
    return out;
  }

  private async commit(h: JsonHeader): Promise<JsonHeader> {
    const target = String(h.target);
    const file = this.stagingFile(target);
    const upload = this.uploads.get(target);
    if (!upload || !existsSync(file))
      throw new RecorderError('SERVICE_PROTOCOL', `nothing uploaded for ${target}`);
    const fd = openSync(file, 'r');
    fsyncSync(fd);
    closeSync(fd);
    const bytes = readFileSync(file);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (bytes.length !== upload.size || sha256 !== upload.sha256) {
      rmSync(file, { force: true });
      throw new RecorderError(
        'SERVICE_PROTOCOL',
        `the ${target} upload is incomplete or damaged; send it again`,
        {
          size: bytes.length,
        },
      );
    }
    const done = () => {
      rmSync(file, { force: true });
      rmSync(`${file}.meta`, { force: true });
      this.uploads.delete(target);
    };
    if (target === 'identity') {
      const result = await this.installIdentity(bytes);
      done();
      return result;
    }
    const identity = this.identity();
    if (identity?.state !== 'provisioned') {
      throw new RecorderError('SERVICE_REFUSED', 'install the device certificate before a profile');
    }
    const verdict = await this.profileStore(identity.device).apply(bytes);
    done();
    return verdict.ok
      ? { ok: true, version: verdict.profile.version, device: verdict.profile.device }
      : { ok: false, code: verdict.code, message: verdict.message };
  }

  private async installIdentity(bytes: Buffer): Promise<JsonHeader> {
    const identity = this.identity();
    if (!identity) throw new RecorderError('SERVICE_REFUSED', 'ask for a CSR first');
    if (identity.state === 'provisioned') {
      throw new RecorderError('SERVICE_REFUSED', `device ${identity.device} already has its certificate`);
    }
    let doc: { certPem?: unknown; chainPem?: unknown };
    try {
      doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
    } catch {
      throw new RecorderError('IDENTITY_INVALID', 'the identity upload is not JSON');
    }
    let checked;
    try {
      checked = checkDeviceCertificate({
        certPem: String(doc.certPem),
        chainPem: String(doc.chainPem),
        tlsPublicKey: createPublicKey(loadPrivateKey(this.paths.tlsKey)),
        device: identity.device,
        now: this.now(),
      });
    } catch (error) {
      if (isRecorderError(error)) {
        await this.journal!.append('identity-refused', {
          code: error.code,
          reason: error.detail.slice(0, 1000),
        });
      }
      throw error;
    }
    mkdirSync(dirname(this.paths.tlsCert), { recursive: true });
    replaceFileDurable(this.paths.tlsCert, String(doc.certPem));
    replaceFileDurable(this.paths.caChain, String(doc.chainPem));
    replaceFileDurable(this.paths.caCert, checked.ca.toString());
    // Written last: until this rename the device is not provisioned, and a retry starts over.
    replaceFileDurable(
      this.paths.identity,
      JSON.stringify({ device: identity.device, state: 'provisioned' }),
    );
    await this.journal!.append('identity-installed', {
      device: identity.device,
      serial: checked.cert.serialNumber,
      issuer: checked.cert.issuer.replace(/\n/g, ', '),
      notAfter: new Date(checked.cert.validTo).toISOString(),
      unitCa: checked.ca.fingerprint256,
    });
    return { ok: true, device: identity.device };
  }

  private profileStore(device: string): ProfileStore {
    return new ProfileStore({
      path: this.paths.profile,
      device,
      caCertPem: readFileSync(this.paths.caCert, 'utf8'),
      journal: this.journal!,
      now: this.now,
    });
  }

  /** sha256 of the last profile the journal accepted (read once, at start of maintenance mode). */
  private lastAcceptedSha256(): string | null {
    if (!existsSync(this.paths.journal)) return null;
    let sha: string | null = null;
    for (const line of readFileSync(this.paths.journal, 'utf8').split('\n')) {
      if (!line.includes('"kind":"profile-accepted"')) continue;
      try {
        sha = String((JSON.parse(line) as { body: { sha256: string } }).body.sha256);
      } catch {
        // a torn line is the journal writer's business (it moves it aside on open)
      }
    }
    return sha;
  }

  private journalTail(count: number): string[] {
    if (!existsSync(this.paths.journal)) return [];
    const lines = readFileSync(this.paths.journal, 'utf8').trimEnd().split('\n');
    const out: string[] = [];
    let bytes = 0;
    for (let i = lines.length - 1; i >= 0 && out.length < Math.max(1, Math.min(count, 100)); i--) {
      bytes += lines[i]!.length + 1;
      if (bytes > MAX_TAIL_BYTES && out.length > 0) break;
      out.unshift(lines[i]!);
    }
    return out;
  }

  private async reboot(): Promise<JsonHeader> {
    const identity = this.identity();
    if (identity?.state !== 'provisioned' || !existsSync(this.paths.profile)) {
      throw new RecorderError(
        'SERVICE_REFUSED',
        'the device needs a certificate and a profile before service',
      );
    }
    await this.journal!.append('reboot-into-service', { firmware: this.firmware });
    return { ok: true, rebooting: true };
  }
}
