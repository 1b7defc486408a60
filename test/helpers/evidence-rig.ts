/**
 * Real evidence from a device to a station's store and on to a center's: a device with an
 * Ed25519 evidence key bound into a certificate of the test unit CA, segments sealed by the real
 * Sealer (AES-256-GCM, key wrapped to the test center key), uploaded by the real Uploader over a
 * TestWire into a station's UploadReceiver; a center receiver in the center role. Each gateway
 * has a config file, so `recorder evidence …` runs against it.
 */
import type { ExecutionContext } from 'ava';
import {
  X509Certificate,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JournalWriter } from '../../device/journal-writer.ts';
import { Sealer } from '../../device/sealing/sealer.ts';
import { StateStore } from '../../device/state-store.ts';
import { Uploader, type PendingUpload } from '../../device/uploader.ts';
import { caPaths, issueCertificate, writeIssued } from '../../gateway/ca.ts';
import { EvidenceStore } from '../../gateway/evidence-store.ts';
import { UploadReceiver, type UploadAlert } from '../../gateway/upload-receiver.ts';
import type { JournalEntry } from '../../protocol/journal-entry.ts';
import { testCenterKeys } from './media.ts';
import { testPki, type TestPki } from './pki.ts';
import { sealMeta } from './sealing.ts';
import { tempDir } from './temp.ts';
import { TestWire } from './upload-wire.ts';

export interface DeviceRig {
  id: string;
  dir: string;
  keys: { publicKey: KeyObject; privateKey: KeyObject };
  certPem: string;
  /** the device's TLS files (certificate, key, CA), for a real MQTT connection */
  tls: { cert: string; key: string; ca: string };
  journal: JournalWriter;
  journalPath: string;
  evidenceDir: string;
  /** the device's state store: the real Sealer queues each sealed item here, as on a recorder */
  state: StateStore;
  items: PendingUpload[];
  entries: Map<string, JournalEntry>;
  /** seals one more segment of `bytes` random bytes */
  seal(bytes: number): Promise<PendingUpload>;
}

export interface GatewayRig {
  dir: string;
  role: 'station' | 'center';
  store: EvidenceStore;
  receiver: UploadReceiver;
  alerts: UploadAlert[];
  receiptKeys: { publicKey: KeyObject; privateKey: KeyObject };
  receiptPubPath: string;
  configPath: string;
  /** rewrites the config file with these extra sections (e.g. upstream) */
  writeConfig(extra?: Record<string, unknown>): void;
}

export interface EvidenceWorld {
  dir: string;
  pki: TestPki;
  devices: Map<string, DeviceRig>;
  device(id: string): Promise<DeviceRig>;
  gateway(name: string, role: 'station' | 'center'): GatewayRig;
  /** uploads everything pending of `device` to `station` and syncs its journal; fails the test otherwise */
  upload(device: DeviceRig, station: GatewayRig): Promise<void>;
}

export function evidenceWorld(t: ExecutionContext): EvidenceWorld {
  const dir = tempDir(t, 'recorder-evidence-');
  const pki = testPki(join(dir, 'pki'));
  const devices = new Map<string, DeviceRig>();
  const center = testCenterKeys();
  const centerKeyPath = join(dir, 'center.key.pem');
  writeFileSync(centerKeyPath, center.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });

  const device = async (id: string): Promise<DeviceRig> => {
    const ddir = join(dir, id);
    const spool = join(ddir, 'spool');
    const evidenceDir = join(ddir, 'evidence');
    mkdirSync(spool, { recursive: true });
    mkdirSync(evidenceDir, { recursive: true });
    const keys = generateKeyPairSync('ed25519');
    const issued = issueCertificate(pki.caDir, {
      role: 'device',
      id,
      evidencePublicKeyPem: keys.publicKey.export({ type: 'spki', format: 'pem' }) as string,
    });
    const tls = writeIssued(join(ddir, 'tls'), 'device', id, issued);
    const journalPath = join(ddir, 'journal.jsonl');
    const journal = await JournalWriter.open({ path: journalPath, device: id, privateKey: keys.privateKey });
    t.teardown(() => journal.close());
    const state = await StateStore.open(join(ddir, 'state.json'));
    const sealer = new Sealer({ evidenceDir, journal, centerPublicKey: center.publicKey, state });
    const items: PendingUpload[] = [];
    const entries = new Map<string, JournalEntry>();
    let n = 0;
    const rig: DeviceRig = {
      id,
      dir: ddir,
      keys,
      certPem: issued.certPem,
      tls: { cert: tls.cert, key: tls.key!, ca: tls.ca },
      journal,
      journalPath,
      evidenceDir,
      state,
      items,
      entries,
      seal: async (bytes) => {
        const segment = n++;
        const spoolPath = join(spool, `seg-${segment}.ts`);
        writeFileSync(spoolPath, randomBytes(bytes));
        const start = new Date(Date.parse('2026-11-22T10:00:00.000Z') + segment * 10_000);
        const { entry } = await sealer.seal(
          spoolPath,
          sealMeta({ segment, start, end: new Date(start.getTime() + 10_000) }),
        );
        const evidence = (entry.body as { evidence: { file: string; bytes: number; sha256: string } })
          .evidence;
        const item: PendingUpload = {
          file: evidence.file,
          sha256: evidence.sha256,
          bytes: evidence.bytes,
          seq: entry.seq,
          sealedAt: entry.time,
        };
        items.push(item);
        entries.set(item.file, entry);
        return item;
      },
    };
    devices.set(id, rig);
    return rig;
  };

  const gateway = (name: string, role: 'station' | 'center'): GatewayRig => {
    const gdir = join(dir, name);
    mkdirSync(gdir, { recursive: true });
    const store = new EvidenceStore(join(gdir, 'evidence'));
    t.teardown(() => store.close());
    const receiptKeys = generateKeyPairSync('ed25519');
    const receiptKeyPath = join(gdir, 'receipt.key.pem');
    const receiptPubPath = join(gdir, 'receipt.pub.pem');
    writeFileSync(receiptKeyPath, receiptKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    writeFileSync(receiptPubPath, receiptKeys.publicKey.export({ type: 'spki', format: 'pem' }));
    const alerts: UploadAlert[] = [];
    const receiver = new UploadReceiver({
      store,
      unit: pki.unit,
      holder: name,
      role,
      receiptKey: receiptKeys.privateKey,
      // Station: the key of the device's TLS certificate. Center: only what a relay sends along.
      deviceKey: (d) => {
        const rig = role === 'station' ? devices.get(d) : undefined;
        return rig ? createPublicKey(rig.keys.publicKey.export({ type: 'spki', format: 'pem' })) : null;
      },
      deviceCertificate: (d) => devices.get(d)?.certPem ?? null,
      ...(role === 'center'
        ? {
            centerKey: center.privateKey,
            trustedCas: [new X509Certificate(readFileSync(caPaths(pki.caDir).cert))],
          }
        : {}),
    });
    receiver.on('alert', (a: UploadAlert) => alerts.push(a));
    const configPath = join(gdir, 'gateway.json');
    const writeConfig = (extra: Record<string, unknown> = {}) =>
      writeFileSync(
        configPath,
        JSON.stringify({
          format: 'recorder-gateway/1',
          unit: pki.unit,
          listen: { host: '127.0.0.1', port: 0 },
          tls: pki.config().tls,
          evidence: {
            dir: join(gdir, 'evidence'),
            receiptKey: receiptKeyPath,
            role,
            ...(role === 'center' ? { centerKey: centerKeyPath } : {}),
          },
          ...extra,
        }),
      );
    writeConfig();
    return { dir: gdir, role, store, receiver, alerts, receiptKeys, receiptPubPath, configPath, writeConfig };
  };

  const upload = async (rig: DeviceRig, station: GatewayRig) => {
    const uploader = new Uploader({
      link: new TestWire(station.receiver, rig.id),
      device: rig.id,
      evidenceDir: rig.evidenceDir,
      gatewayKey: station.receiptKeys.publicKey,
      pending: () => rig.items,
      entryFor: async (item) => rig.entries.get(item.file)!,
      journal: rig.journal,
      forget: async (file) =>
        rig.items.splice(
          rig.items.findIndex((i) => i.file === file),
          1,
        ),
      journalPath: rig.journalPath,
      chunkBytes: 16 * 1024,
      replyTimeoutMs: 2000,
    });
    const result = await uploader.uploadAll();
    if (result.failed.length) throw new Error(`upload failed: ${JSON.stringify(result.failed)}`);
    await uploader.syncJournal();
  };

  return { dir, pki, devices, device, gateway, upload };
}
