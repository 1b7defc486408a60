/**
 * The station half of `recorder demo`: a unit CA, a gateway on a loopback port with mutual TLS, the
 * device's certificate binding its evidence key, and a manager certificate for mosquitto_sub. Made
 * once per demo state directory and reused after.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { caPaths, initCa, issueCertificate, writeIssued } from '../gateway/ca.ts';
import { parseGatewayConfig } from '../gateway/config.ts';
import { startGateway, type GatewayHandle } from '../gateway/gateway.ts';

export interface DemoStation {
  gateway: GatewayHandle;
  /** the profile's gateway section for the device */
  deviceGateway: { url: string; cert: string; key: string; ca: string; statusIntervalSeconds: number };
  /** the files of a manager certificate, for mosquitto_sub or recorder fleet watch */
  manager: { cert: string; key: string; ca: string };
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
  const gw = issued('gateway', 'station', { ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
  const config = parseGatewayConfig({
    format: 'recorder-gateway/1',
    unit,
    listen: { host: '127.0.0.1', port: 0 },
    tls: { cert: gw.cert, key: gw.key, ca: caPaths(caDir).cert, crl: caPaths(caDir).crl },
    statusIntervalMs: 2000,
    fleet: { publishIntervalMs: 2000 },
    // Absolute: parseGatewayConfig alone resolves nothing against a config file, and the demo
    // station has no receipt key, so it stores nothing (uploads off, logged).
    evidence: { dir: join(root, 'station-evidence'), receiptKey: join(root, 'station-receipt.key.pem') },
  });
  const gateway = await startGateway(config, { logSink: () => undefined });
  const dev = issued('device', device, { evidencePublicKeyPem: evidenceKeyPem });
  const mgr = issued('manager', 'duty-desk');
  return {
    gateway,
    deviceGateway: {
      url: gateway.url,
      cert: dev.cert,
      key: dev.key,
      ca: caPaths(caDir).cert,
      statusIntervalSeconds: 5,
    },
    manager: { cert: mgr.cert, key: mgr.key, ca: caPaths(caDir).cert },
  };
}
