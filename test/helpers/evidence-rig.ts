/**
 * Real evidence from a device to a station's store and on to a center's: devices from
 * sealed-device.ts (evidence key bound into a certificate of the test unit CA, segments sealed by
 * the real Sealer), uploaded by the real Uploader over a TestWire into a station's
 * UploadReceiver; a center receiver in the center role. Each gateway has a config file, so
 * `recorder evidence …` runs against it.
 */
import type { ExecutionContext } from 'ava';
import { X509Certificate, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PendingUpload } from '../../device/uploader.ts';
import { caPaths } from '../../gateway/ca.ts';
import { EvidenceStore } from '../../gateway/evidence-store.ts';
import { UploadReceiver, type UploadAlert } from '../../gateway/upload-receiver.ts';
import { testCenterKeys } from './media.ts';
import { testPki, type TestPki } from './pki.ts';
import { sealedDevice, type SealedDevice } from './sealed-device.ts';
import { tempDir } from './temp.ts';
import { TestWire } from './upload-wire.ts';

/** A device of the world (see sealed-device.ts). */
export type DeviceRig = SealedDevice;

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

/** The offer a station relays for one of `device`'s items: its sealing entry and certificate along. */
export function relayedOffer(device: DeviceRig, item: PendingUpload) {
  const entry = device.entries.get(item.file)!;
  return { id: item.file, entry, bytes: item.bytes, sha256: item.sha256, deviceCert: device.certPem };
}

/** `unit`: the test unit CA's unit; worlds of several units share the (cached) center key. */
export function evidenceWorld(t: ExecutionContext, unit?: string): EvidenceWorld {
  const dir = tempDir(t, 'recorder-evidence-');
  const pki = testPki(join(dir, 'pki'), unit);
  const devices = new Map<string, DeviceRig>();
  const center = testCenterKeys();
  const centerKeyPath = join(dir, 'center.key.pem');
  writeFileSync(centerKeyPath, center.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });

  const device = async (id: string): Promise<DeviceRig> => {
    const rig = await sealedDevice({
      id,
      dir: join(dir, id),
      caDir: pki.caDir,
      centerPublicKey: center.publicKey,
    });
    t.teardown(() => rig.journal.close());
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
    const uploader = rig.uploader({
      link: new TestWire(station.receiver, rig.id),
      gatewayKey: station.receiptKeys.publicKey,
      chunkBytes: 16 * 1024,
      replyTimeoutMs: 2000,
    });
    const result = await uploader.uploadAll();
    if (result.failed.length) throw new Error(`upload failed: ${JSON.stringify(result.failed)}`);
    await uploader.syncJournal();
  };

  return { dir, pki, devices, device, gateway, upload };
}
