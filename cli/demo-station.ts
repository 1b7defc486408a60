/**
 * The station half of `recorder demo`: a unit CA, a station gateway on a loopback port with mutual
 * TLS, and the provincial center's gateway the station relays to (issue 6), each with its own
 * receipt key and evidence store; the device's certificate binding its evidence key, and a manager
 * certificate for mosquitto_sub. Made once per demo state directory and reused after; both
 * configurations are written to files so `recorder evidence … --config` works on them afterwards.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadOrCreateSigningKey } from '../device/keys.ts';
import { caPaths, initCa, issueCertificate, writeIssued } from '../gateway/ca.ts';
import { loadGatewayConfig } from '../gateway/config.ts';
import { startGateway, type GatewayHandle } from '../gateway/gateway.ts';

export interface DemoStation {
  gateway: GatewayHandle;
  center: GatewayHandle;
  /** the configuration files, for `recorder evidence list|show|verify --config` */
  configs: { station: string; center: string };
  /** the profile's gateway section for the device */
  deviceGateway: {
    url: string;
    cert: string;
    key: string;
    ca: string;
    statusIntervalSeconds: number;
    receiptKey: string;
  };
  /** the files of a manager certificate, for mosquitto_sub or recorder fleet watch */
  manager: { cert: string; key: string; ca: string };
  close(): Promise<void>;
}

export async function startDemoStation(
  root: string,
  unit: string,
  device: string,
  evidenceKeyPem: string,
): Promise<DemoStation> {
  const caDir = join(root, 'ca');
  if (!existsSync(caPaths(caDir).cert)) initCa(caDir, { unit });
  const issued = (
    role: 'gateway' | 'device' | 'manager',
    id: string,
    extra: Record<string, unknown> = {},
  ) => {
    const dir = join(root, 'identities');
    mkdirSync(dir, { recursive: true });
    const certPath = join(dir, `${role}-${id}.cert.pem`);
    const keyPath = join(dir, `${role}-${id}.key.pem`);
    if (!existsSync(certPath)) writeIssued(dir, role, id, issueCertificate(caDir, { role, id, ...extra }));
    return { cert: certPath, key: keyPath };
  };
  const loopback = { ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] };
  const tls = (who: { cert: string; key: string }) => ({
    cert: who.cert,
    key: who.key,
    ca: caPaths(caDir).cert,
    crl: caPaths(caDir).crl,
  });
  /**
   * A gateway directory named after its certificate id: its receipt key pair, its evidence store
   * and its configuration file (`extra` adds the role's own settings).
   */
  const gatewayDir = (id: 'center' | 'station', dirName: string, extra: Record<string, unknown>) => {
    const dir = join(root, dirName);
    mkdirSync(dir, { recursive: true });
    const receiptKey = join(dir, 'receipt.key.pem');
    const receiptPub = join(dir, 'receipt.pub.pem');
    loadOrCreateSigningKey(receiptKey, receiptPub);
    const path = join(dir, 'gateway.json');
    const config = {
      format: 'recorder-gateway/1',
      unit,
      listen: { host: '127.0.0.1', port: 0 },
      tls: tls(issued('gateway', id, loopback)),
      statusIntervalMs: 2000,
      fleet: { publishIntervalMs: 2000 },
      ...extra,
      evidence: { dir: join(dir, 'evidence'), receiptKey, role: id, ...(extra.evidence as object) },
    };
    writeFileSync(path, `${JSON.stringify(config, null, 2)}\n`);
    return { path, receiptPub };
  };
  const quiet = { logSink: () => undefined };

  // The center first: the station needs its address. Same unit CA here; a province trusts each
  // unit's CA. Only the center holds the key that decrypts evidence (DESIGN.md "Uploads").
  const centerFiles = gatewayDir('center', 'center-gateway', {
    evidence: { centerKey: join(root, 'center', 'center.key.pem') },
  });
  const center = await startGateway(loadGatewayConfig(centerFiles.path), quiet);
  try {
    // The relay uses the station's own gateway certificate (issue 6 item 4).
    const stationFiles = gatewayDir('station', 'station', {
      upstream: {
        url: center.url,
        ...issued('gateway', 'station', loopback),
        ca: caPaths(caDir).cert,
        receiptKey: centerFiles.receiptPub,
      },
    });
    const gateway = await startGateway(loadGatewayConfig(stationFiles.path), quiet);
    const dev = issued('device', device, { evidencePublicKeyPem: evidenceKeyPem });
    const mgr = issued('manager', 'duty-desk');
    return {
      gateway,
      center,
      configs: { station: stationFiles.path, center: centerFiles.path },
      deviceGateway: {
        url: gateway.url,
        cert: dev.cert,
        key: dev.key,
        ca: caPaths(caDir).cert,
        statusIntervalSeconds: 5,
        receiptKey: stationFiles.receiptPub,
      },
      manager: { cert: mgr.cert, key: mgr.key, ca: caPaths(caDir).cert },
      close: async () => {
        await gateway.close();
        await center.close();
      },
    };
  } catch (error) {
    await center.close();
    throw error;
  }
}
