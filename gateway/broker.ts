/**
 * The station broker (issue 5 item 2): aedes 1.x behind `node:tls` with client certificates
 * required and verified by OpenSSL, a frame limit at the transport, the ACL of protocol/acl.ts, and
 * schema validation of every payload.
 *
 * - Identity (role, id, unit) comes from the verified client certificate (OU, CN, O), never from the
 *   CONNECT packet. The MQTT client id must be the certificate id, or start with `{id}:` (a manager
 *   may run several tools), so one client cannot take over another's session.
 * - A publish the ACL refuses disconnects the client (aedes' only way; STACK-NOTES "MQTT") and is
 *   counted. A publish on an allowed topic with an invalid payload is dropped without disconnecting:
 *   it is acknowledged (so an honest-but-buggy client does not resend it forever) but re-addressed to
 *   an unreadable `$dropped/...` topic and never retained or forwarded.
 * - A refused subscription gets the failure return code 0x80 and the connection stays up.
 */
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { createServer, DEFAULT_CIPHERS, type Server, type TLSSocket } from 'node:tls';
import { mayPublish, maySubscribe, type Identity } from '../protocol/acl.ts';
import { RecorderError } from '../protocol/errors.ts';
import type { RejectReason } from '../protocol/schemas/fleet.ts';
import { RejectReasons } from '../protocol/schemas/fleet.ts';
import {
  ROLES,
  TOPICS,
  decodePayload,
  parseTopic,
  type ParsedTopic,
  type Role,
  type TopicName,
} from '../protocol/topics.ts';
import type { SchemaProblem } from '../protocol/schemas/validate.ts';
import { crlRevocations, evidenceKeyFromCertificate, identityFromSubject, issuerNameDer } from './ca.ts';
import { FrameGuard } from './frame-guard.ts';
import type { Logger } from './log.ts';
import type { ProfileService } from './profile-service.ts';

/**
 * TLS 1.3's mandatory suite first, then OpenSSL's defaults (which put AES-256 first). The transport
 * carries evidence that is already AES-256-GCM under the center key; its own strength is bounded by
 * the RSA-2048 certificates and the X25519 exchange (112 and 128 bits), so AES-128 loses nothing,
 * and it takes nearly a third less CPU per byte at both ends of an upload (docs/performance.md). A client
 * that offers only AES-256 still gets it.
 */
export const PREFERRED_CIPHERS = `TLS_AES_128_GCM_SHA256:${DEFAULT_CIPHERS}`;

/** A unit's CRL as the broker loaded it: nextUpdate (ISO), or null when it names none. */
export interface CrlExpiry {
  unit: string;
  nextUpdate: string | null;
}

export interface BrokerOptions {
  unit: string;
  /**
   * A provincial center: the other units whose clients it admits (their certificates' O), each
   * with its CA certificate and CRL and under the ACL of its own unit. `tls` is `unit`'s.
   */
  units?: readonly { unit: string; ca: string; crl: string }[];
  host: string;
  port: number;
  tls: { cert: string; key: string; ca: string; crl: string };
  maxFrameBytes: number;
  /**
   * aedes `drainTimeout`: a client whose socket stays full this long is disconnected (0: never).
   * Default 10,000 (aedes' own default is 60,000).
   */
  slowClientTimeoutMs?: number;
  log: Logger;
  /** called for every valid message from a client, after validation */
  onMessage?: (who: Identity, name: TopicName, device: string, value: unknown, receivedAt: number) => void;
  onDisconnect?: (who: Identity) => void;
  /**
   * Upload messages (issue 6), after the ACL and validation: offer, data (value = the raw bytes),
   * done, journal. The broker acknowledges the publish (PUBACK) only when the promise settles, so a
   * chunk is acknowledged once it is written and the PUBACK paces the sender. These messages are
   * consumed here and routed to no subscriber (not even a gateway-role `#`).
   */
  onUpload?: (who: Identity, topic: ParsedTopic, value: unknown) => Promise<void>;
  /** how often to look for a new CRL (ms); default 1000 */
  crlPollMs?: number;
  /** issue 7 item 4: verifies and keeps pushed profiles; without it every profile push is refused */
  profiles?: ProfileService;
}

/** What clients send for upload (issue 6): consumed by the gateway, never routed. */
const UPLOAD_TOPICS = new Set<TopicName>(
  (Object.keys(TOPICS) as TopicName[]).filter((n) => n.startsWith('upload') && !TOPICS[n].readers.length),
);

export interface RejectEvent {
  reason: RejectReason;
  clientId?: string;
  role?: string;
  id?: string;
  topic?: string;
  detail: string;
  problems?: SchemaProblem[];
}

export class GatewayBroker extends EventEmitter {
  readonly counters = Object.fromEntries(RejectReasons.map((r) => [r, 0])) as Record<RejectReason, number>;
  private readonly identities = new WeakMap<object, Identity>();
  private readonly sockets = new Set<Socket>();
  /** device number → the evidence-signing key its verified certificate binds (DESIGN.md "Identity") */
  private readonly evidenceKeys = new Map<string, KeyObject>();
  /** device number → its verified certificate (PEM): a station's relay sends it to the center */
  private readonly deviceCerts = new Map<string, string>();
  private server!: Server;
  private loadedCrls: CrlExpiry[] = [];
  aedes!: Aedes;

  private constructor(private readonly options: BrokerOptions) {
    super();
  }

  static async start(options: BrokerOptions): Promise<GatewayBroker> {
    const broker = new GatewayBroker(options);
    await broker.listen();
    return broker;
  }

  get address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  get clients(): number {
    return this.aedes.connectedClients;
  }

  private reject(event: RejectEvent): void {
    this.counters[event.reason]++;
    this.options.log('warn', `rejected: ${event.detail}`, { ...event });
    this.emit('reject', event);
  }

  /** The CA certificate and CRL files of every unit it admits, its own first. */
  private trustFiles(): { ca: string[]; crl: string[] } {
    const { tls, units = [] } = this.options;
    return { ca: [tls.ca, ...units.map((u) => u.ca)], crl: [tls.crl, ...units.map((u) => u.crl)] };
  }

  /**
   * Every admitted unit's CRLs, as one PEM text. A file that cannot be read or holds no CRL is
   * GATEWAY_CONFIG_INVALID, naming it: loaded without it, that unit's clients would all be refused
   * at TLS (OpenSSL finds no CRL for their issuer) with nothing saying why.
   */
  private readCrls(): { text: string; expiries: CrlExpiry[] } {
    const units = [this.options.unit, ...(this.options.units ?? []).map((u) => u.unit)];
    const expiries: CrlExpiry[] = [];
    const texts = this.trustFiles().crl.map((path, i) => {
      let pem: string;
      let crls: ReturnType<typeof crlRevocations>;
      try {
        pem = readFileSync(path, 'utf8');
        crls = crlRevocations(pem);
      } catch (error) {
        throw new RecorderError(
          'GATEWAY_CONFIG_INVALID',
          `cannot read the CRL ${path}: ${(error as Error).message}`,
        );
      }
      if (crls.length === 0) throw new RecorderError('GATEWAY_CONFIG_INVALID', `${path} holds no CRL`);
      const next = crls.map((c) => c.nextUpdate?.getTime() ?? Infinity).reduce((a, b) => Math.min(a, b));
      expiries.push({
        unit: units[i]!,
        nextUpdate: Number.isFinite(next) ? new Date(next).toISOString() : null,
      });
      return pem;
    });
    return { text: texts.join('\n'), expiries };
  }

  /**
   * Each admitted unit's CRL as loaded, and when it expires (nextUpdate): after that OpenSSL
   * refuses every client of that unit (X509_V_ERR_CRL_HAS_EXPIRED) until a new one is loaded.
   */
  crls(): readonly CrlExpiry[] {
    return this.loadedCrls;
  }

  private secureContextOptions(crls: string) {
    const { tls } = this.options;
    const trust = this.trustFiles();
    const read = (path: string, what: string) => {
      try {
        return readFileSync(path);
      } catch (error) {
        throw new RecorderError(
          'GATEWAY_CONFIG_INVALID',
          `cannot read the ${what} ${path}: ${(error as Error).message}`,
        );
      }
    };
    return {
      cert: read(tls.cert, 'certificate'),
      key: read(tls.key, 'private key'),
      ca: trust.ca.map((path) => read(path, 'CA certificate')),
      // With a CRL OpenSSL checks every client leaf against it (X509_V_FLAG_CRL_CHECK). One PEM
      // string is read as one CRL, so a file of several (a center's, one per unit CA) goes as a list.
      crl: crls.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g)!,
    };
  }

  private async listen(): Promise<void> {
    const o = this.options;
    // Read first: a trust file that cannot be used stops the start before aedes' timers run.
    const first = this.readCrls();
    const secureContext = this.secureContextOptions(first.text);
    let lastCrls = first.text;
    this.aedes = await Aedes.createBroker({
      id: `gateway-${o.unit}`,
      maxClientsIdLength: 128,
      // A subscriber that stops reading (a manager on a bad link) holds each delivery to it; with
      // aedes' concurrency (100) of them waiting, mqemitter queues every message for everyone. The
      // drain timeout bounds that stall and disconnects the slow client (it reconnects and gets the
      // retained statuses again).
      drainTimeout: o.slowClientTimeoutMs ?? 10_000,
      preConnect: (client, packet, done) => this.preConnect(client, packet, done),
      authenticate: (client, _username, _password, done) => this.authenticate(client, done),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => this.authorizeSubscribe(client, sub, done),
    });
    this.aedes.on('clientDisconnect', (client) => {
      const who = this.identityOf(client);
      if (who) o.onDisconnect?.(who);
    });
    this.aedes.on('clientError', (client, error) =>
      o.log('debug', 'client error', { clientId: client.id, error: error.message }),
    );
    this.server = createServer({
      ...secureContext,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ciphers: PREFERRED_CIPHERS,
      honorCipherOrder: true,
    });
    this.loadedCrls = first.expiries;
    this.server.on('secureConnection', (socket) => this.onSecureConnection(socket));
    this.server.on('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
      this.reject({
        reason: 'tls',
        detail: `TLS handshake refused from ${socket.remoteAddress}: ${error.code ?? error.message}`,
      });
    });
    // Revocation takes effect for new connections as soon as `recorder ca revoke` rewrites crl.pem.
    for (const path of this.trustFiles().crl) {
      watchFile(path, { interval: o.crlPollMs ?? 1000 }, () => {
        try {
          const crls = this.readCrls();
          if (crls.text === lastCrls) return;
          this.server.setSecureContext(this.secureContextOptions(crls.text));
          lastCrls = crls.text;
          this.loadedCrls = crls.expiries;
          o.log('info', 'loaded a new CRL', { path });
          this.dropRevoked(crls.text);
        } catch (error) {
          o.log('error', 'cannot load the new CRL; keeping the previous one', {
            path,
            error: (error as Error).message,
          });
        }
      });
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(o.port, o.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** A certificate revoked while its holder is connected: close that connection now. */
  private dropRevoked(crlPem: string): void {
    // Serials count per issuer: each unit CA numbers its certificates from 1 (a center trusts several).
    const crls = crlRevocations(crlPem);
    for (const socket of this.sockets) {
      const peer = (socket as TLSSocket).getPeerCertificate();
      const serial = peer.serialNumber ? BigInt(`0x${peer.serialNumber}`).toString(16).toUpperCase() : null;
      if (!serial) continue;
      const issuer = issuerNameDer(peer.raw);
      if (!crls.some((crl) => crl.issuer === issuer && crl.serials.has(serial))) continue;
      const who = this.identities.get(socket);
      this.reject({
        reason: 'tls',
        ...(who ? { role: who.role, id: who.id } : {}),
        detail: `certificate ${serial} was revoked while connected; connection closed`,
      });
      socket.destroy();
    }
  }

  private onSecureConnection(socket: TLSSocket): void {
    const cert = socket.getPeerCertificate();
    const peer = identityFromSubject(cert.subject ?? {});
    const units = [this.options.unit, ...(this.options.units ?? []).map((u) => u.unit)];
    if (!peer || !ROLES.includes(peer.role as Role) || !units.includes(peer.unit)) {
      this.reject({
        reason: 'identity',
        detail: `certificate names no role of unit ${units.join(' or ')}`,
        ...(peer ? { role: peer.role, id: peer.id } : {}),
      });
      socket.destroy();
      return;
    }
    // Of another unit a center admits its stations only: that unit's recorders, managers and
    // technicians work with their own station, and a recorder revoked there (a CRL the center may
    // not have yet) must not upload here directly.
    if (peer.unit !== this.options.unit && peer.role !== 'gateway') {
      this.reject({
        reason: 'identity',
        role: peer.role,
        id: peer.id,
        detail: `a ${peer.role} of unit ${peer.unit}: of another unit this center admits stations (gateway) only`,
      });
      socket.destroy();
      return;
    }
    // A center trusts several unit CAs; each speaks for its own unit only. OpenSSL has checked that
    // the CA named as issuer signed the certificate, and the gateway's start that each CA's O is
    // the unit it is admitted for, so a certificate naming unit A issued by unit B's CA stops here.
    const issuerUnit = identityFromSubject(cert.issuer ?? {})?.unit;
    if (issuerUnit !== peer.unit) {
      this.reject({
        reason: 'identity',
        role: peer.role,
        id: peer.id,
        detail: `certificate names unit ${peer.unit} but was issued by the CA of unit ${issuerUnit ?? 'none'}`,
      });
      socket.destroy();
      return;
    }
    const who: Identity = { role: peer.role as Role, id: peer.id, unit: peer.unit };
    if (who.role === 'device') this.rememberEvidenceKey(who.id, socket);
    this.sockets.add(socket);
    // aedes would do this on a raw socket; behind FrameGuard it cannot. Without it Nagle's algorithm
    // holds small PUBLISH frames back ~40 ms waiting for ACKs.
    socket.setNoDelay(true);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const guard = new FrameGuard(socket, this.options.maxFrameBytes, (announced) =>
      this.reject({
        reason: 'frame-too-large',
        role: who.role,
        id: who.id,
        detail: `${who.role} ${who.id} announced a ${announced}-byte packet (limit ${this.options.maxFrameBytes})`,
      }),
    );
    this.identities.set(guard, who);
    this.identities.set(socket, who);
    this.aedes.handle(guard);
  }

  private rememberEvidenceKey(device: string, socket: TLSSocket): void {
    try {
      const raw = socket.getPeerCertificate().raw;
      const pem = `-----BEGIN CERTIFICATE-----\n${raw.toString('base64')}\n-----END CERTIFICATE-----\n`;
      const key = evidenceKeyFromCertificate(pem);
      if (key) this.evidenceKeys.set(device, createPublicKey(key));
      if (key) this.deviceCerts.set(device, pem);
    } catch (error) {
      this.options.log('warn', 'cannot read the evidence key from a device certificate', {
        device,
        error: (error as Error).message,
      });
    }
  }

  /**
   * The evidence key of a device that has connected since the gateway started (its certificate was
   * verified against the unit CA and the CRL), or null.
   */
  evidenceKeyOf(device: string): KeyObject | null {
    return this.evidenceKeys.get(device) ?? null;
  }

  /** The certificate (PEM) whose key evidenceKeyOf returns, or null. */
  certificateOf(device: string): string | null {
    return this.deviceCerts.get(device) ?? null;
  }

  private identityOf(client: Client | null): Identity | undefined {
    return client ? this.identities.get(client.conn as object) : undefined;
  }

  private preConnect(client: Client, _packet: unknown, done: (e: Error | null, ok: boolean) => void) {
    done(null, this.identityOf(client) !== undefined);
  }

  /**
   * Runs on CONNECT: the client id must be the certificate's id (or `{id}:…`) and the last will must
   * pass the ACL and schema. Refused with CONNACK return code 5 (not authorized), then closed.
   */
  private authenticate(client: Client, done: (e: AuthenticateError | null, ok: boolean | null) => void) {
    const who = this.identityOf(client);
    const refuse = (event: RejectEvent) => {
      this.reject(event);
      const error = new Error(event.detail) as AuthenticateError;
      error.returnCode = 5;
      done(error, null);
    };
    const clientId = client.id;
    if (!who) return refuse({ reason: 'identity', clientId, detail: 'no verified certificate' });
    if (clientId !== who.id && !clientId.startsWith(`${who.id}:`)) {
      return refuse({
        reason: 'identity',
        clientId,
        role: who.role,
        id: who.id,
        detail: `client id ${clientId} is not the certificate id ${who.id} (or ${who.id}:…)`,
      });
    }
    // A center admits several units, whose certificate ids may be alike: a client id held by
    // another unit's (or role's) client is not taken over, as aedes would do.
    // (aedes 1.x keeps connected clients on `clients`; its types do not say so.)
    const connected = (this.aedes as Aedes & { clients: Record<string, Client | undefined> }).clients;
    const holder = this.identityOf(connected[clientId] ?? null);
    if (holder && (holder.unit !== who.unit || holder.role !== who.role)) {
      return refuse({
        reason: 'identity',
        clientId,
        role: who.role,
        id: who.id,
        detail: `client id ${clientId} is held by a ${holder.role} of unit ${holder.unit}`,
      });
    }
    // aedes keeps the CONNECT will on `_will` until the connection is accepted.
    const will = (client as Client & { _will?: { topic: string; payload: string | Buffer } })._will;
    if (will && parseTopic(will.topic)?.name === 'profile') {
      // A profile is retained only through a checked publish, never by a will fired later.
      return refuse({
        reason: 'acl-publish',
        clientId,
        role: who.role,
        id: who.id,
        topic: will.topic,
        detail: 'a last will may not carry a profile',
      });
    }
    if (will) {
      const checked = this.checkPublish(who, will.topic, Buffer.from(will.payload));
      if (!checked.ok) {
        const { ok: _ok, ...problem } = checked;
        return refuse({
          ...problem,
          clientId,
          role: who.role,
          id: who.id,
          detail: `last will refused: ${problem.detail}`,
        });
      }
    }
    done(null, true);
  }

  /** The ACL, then the schema; a payload naming a device must name the topic's device. */
  private checkPublish(
    who: Identity,
    topic: string,
    payload: Buffer,
  ):
    | { ok: true; name: TopicName; device: string; parsed: ParsedTopic; value: unknown; version?: number }
    | (Pick<RejectEvent, 'reason' | 'detail' | 'topic' | 'problems'> & { ok: false }) {
    const name = mayPublish(who, topic);
    if (!name) {
      return {
        ok: false,
        reason: 'acl-publish',
        topic,
        detail: `${who.role} ${who.id} may not publish on ${topic}`,
      };
    }
    const parsed = parseTopic(topic)!;
    const device = parsed.device;
    const decoded = decodePayload(name, payload);
    let problems = decoded.ok ? [] : decoded.problems;
    if (decoded.ok && typeof decoded.value === 'object' && decoded.value && 'device' in decoded.value) {
      if ((decoded.value as { device: string }).device !== device) {
        problems = [{ path: '/device', message: `names another device than the topic (${device})` }];
      }
    }
    if (problems.length > 0) {
      return { ok: false, reason: 'schema', topic, problems, detail: `invalid ${name} payload on ${topic}` };
    }
    if (name === 'profile') {
      // Issue 7 item 4: a forged or stale profile is never retained (gateway/profile-service.ts).
      const verdict = this.options.profiles?.check(device, payload) ?? {
        ok: false as const,
        code: 'PROFILE_PUSH_REFUSED' as const,
        message: 'this gateway keeps no profiles',
      };
      if (!verdict.ok) {
        return {
          ok: false,
          reason: 'schema',
          topic,
          problems: [{ path: '/', message: `${verdict.code}: ${verdict.message}` }],
          detail: `profile for ${device} refused (${verdict.code}): ${verdict.message}`,
        };
      }
      return {
        ok: true,
        name,
        device,
        parsed,
        value: decoded.ok ? decoded.value : undefined,
        version: verdict.version,
      };
    }
    return { ok: true, name, device, parsed, value: decoded.ok ? decoded.value : undefined };
  }

  private authorizePublish(
    client: Client | null,
    packet: PublishPacket,
    done: (error?: Error | null) => void,
  ) {
    const who = this.identityOf(client);
    if (!client || !who) return done(null); // the broker's own publications
    const receivedAt = Date.now();
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const checked = this.checkPublish(who, packet.topic, payload);
    if (!checked.ok) {
      const { ok: _ok, ...problem } = checked;
      this.reject({ ...problem, clientId: client.id, role: who.role, id: who.id });
      // Keeps aedes' refusal of $SYS and refuses everything else outside the ACL: disconnects.
      if (problem.reason === 'acl-publish') return done(new Error(problem.detail));
      packet.topic = `$dropped/${who.role}/${who.id}`;
      packet.retain = false;
      packet.payload = Buffer.alloc(0);
      return done(null);
    }
    if (checked.name === 'profile' && this.options.profiles) {
      try {
        this.options.profiles.accept(checked.device, payload, checked.version!);
      } catch (error) {
        // Not kept on disk: not retained either, or a restart would silently lose it.
        this.options.log('error', 'cannot keep the pushed profile', {
          device: checked.device,
          error: (error as Error).message,
        });
        packet.topic = `$dropped/${who.role}/${who.id}`;
        packet.retain = false;
        packet.payload = Buffer.alloc(0);
        return done(null);
      }
      packet.retain = true; // DESIGN.md "MQTT": the profile topic is retained whoever forgets the flag
      this.options.log('info', 'profile retained', {
        device: checked.device,
        version: checked.version,
        by: `${who.role} ${who.id}`,
      });
      this.emit('profile', { device: checked.device, version: checked.version, by: who });
    }
    try {
      this.options.onMessage?.(who, checked.name, checked.device, checked.value, receivedAt);
    } catch (error) {
      this.options.log('error', 'message handler failed', { error: (error as Error).message });
    }
    if (!UPLOAD_TOPICS.has(checked.name)) return done(null);
    // Consumed by the gateway, readable by nobody: re-addressed out of every subscription's reach
    // (`#` does not match `$` topics) and emptied, so aedes neither routes nor keeps the bytes.
    const upload = this.options.onUpload?.(who, checked.parsed, checked.value) ?? Promise.resolve();
    packet.topic = `$consumed/${who.role}/${who.id}`;
    packet.retain = false;
    packet.payload = Buffer.alloc(0);
    upload.then(
      () => done(null),
      (error: Error) => {
        this.options.log('error', 'upload handler failed', { error: error.message, topic: checked.name });
        done(null);
      },
    );
  }

  /** Publishes a QoS 1 message as the gateway itself (the upload replies: nobody else may). */
  publishReply(topic: string, text: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.aedes.publish(
        { cmd: 'publish', topic, payload: Buffer.from(text), qos: 1, retain: false, dup: false },
        (error) => (error ? reject(error) : resolve()),
      ),
    );
  }

  private authorizeSubscribe(
    client: Client,
    sub: Subscription,
    done: (error: Error | null, subscription?: Subscription | null) => void,
  ) {
    const who = this.identityOf(client);
    if (who && maySubscribe(who, sub.topic)) return done(null, sub);
    this.reject({
      reason: 'acl-subscribe',
      clientId: client.id,
      ...(who ? { role: who.role, id: who.id } : {}),
      topic: sub.topic,
      detail: `${who?.role} ${who?.id} may not subscribe to ${sub.topic}`,
    });
    done(null, null);
  }

  /** Publishes a retained message as the gateway itself (gateway topics are nobody else's). */
  publishRetained(topic: string, text: string | Buffer, qos: 0 | 1 = 0): Promise<void> {
    return new Promise((resolve, reject) =>
      this.aedes.publish(
        { cmd: 'publish', topic, payload: Buffer.from(text), qos, retain: true, dup: false },
        (error) => (error ? reject(error) : resolve()),
      ),
    );
  }

  async close(): Promise<void> {
    for (const path of this.trustFiles().crl) unwatchFile(path);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
  }
}
