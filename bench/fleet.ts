/**
 * Issue 5 benchmark: N simulated devices, each on its own TLS connection, publishing a retained
 * QoS 1 status every 10 s (random phase); one manager subscribed to all statuses. Measures delivery
 * latency (device publish → manager receipt, same process clock), and the broker's RSS and CPU from
 * /proc, for our gateway (aedes + ACL + schema validation) and for mosquitto with the same CA and
 * certificates, and prints gateway/mosquitto ratios.
 *
 * Flags: --devices N (default 200), --seconds S measured after all are connected (default 30),
 *        --interval-ms (default 10000), --broker gateway|mosquitto|both (default both).
 * The load generator runs in this one Node process: with thousands of connections its own event
 * loop adds to the latency measured for both brokers alike.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { caPaths, initCa, issueCertificate } from '../gateway/ca.ts';
import { parseGatewayConfig } from '../gateway/config.ts';
import type { Status } from '../protocol/schemas/status.ts';
import { deviceTopic } from '../protocol/topics.ts';

export const name = 'fleet';

interface Options {
  devices: number;
  seconds: number;
  intervalMs: number;
  brokers: ('gateway' | 'mosquitto')[];
}

export interface BrokerResult {
  broker: string;
  devices: number;
  connected: number;
  connectSeconds: number;
  messages: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  rssMiB: number;
  cpuPercent: number;
}

function flag(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
}

function parseOptions(argv: string[]): Options {
  const broker = flag(argv, 'broker', 'both');
  return {
    devices: Number(flag(argv, 'devices', '200')),
    seconds: Number(flag(argv, 'seconds', '30')),
    intervalMs: Number(flag(argv, 'interval-ms', '10000')),
    brokers: broker === 'both' ? ['gateway', 'mosquitto'] : [broker as 'gateway' | 'mosquitto'],
  };
}

const UNIT = 'BENCH';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** RSS (bytes) and CPU time (ms) of a process, from /proc. */
function procUsage(pid: number): { rss: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime, proc(5)
  return { rss, cpuMs: (ticks * 1000) / 100 }; // USER_HZ is 100 on Linux
}

function statusOf(device: string): Status {
  return {
    device,
    time: new Date().toISOString(),
    state: 'standby',
    battery: { percent: 80, charging: false, minutesLeft: 300 },
    storage: { freeBytes: 32_000_000_000, totalBytes: 64_000_000_000, minutesLeft: 900 },
    gnss: { fix: true, lat: '28.2278300', lon: '112.9388600' },
    officer: 'O-1001',
    uploads: { pending: 0 },
    clock: { source: 'gnss', offsetMs: 0 },
    profile: { id: 'bench', version: 1 },
    firmware: '0.1.0',
  };
}

interface Pki {
  dir: string;
  ca: Buffer;
  deviceKey: Buffer;
  deviceCerts: Buffer[];
  manager: { cert: Buffer; key: Buffer };
  server: { cert: string; key: string };
}

/** One CA; every device gets its own certificate (own CN) over one shared RSA key to save key generation. */
function makePki(devices: number): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'recorder-bench-'));
  initCa(join(dir, 'ca'), { unit: UNIT });
  const caDir = join(dir, 'ca');
  const shared = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKeyPem = shared.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const evidence = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const deviceCerts: Buffer[] = [];
  for (let i = 0; i < devices; i++) {
    const id = `D${String(i).padStart(5, '0')}`;
    deviceCerts.push(
      Buffer.from(
        issueCertificate(caDir, { role: 'device', id, publicKeyPem, evidencePublicKeyPem: evidence }).certPem,
      ),
    );
  }
  const mgr = issueCertificate(caDir, { role: 'manager', id: 'bench-manager' });
  const gw = issueCertificate(caDir, { role: 'gateway', id: 'bench-gateway' });
  writeFileSync(join(dir, 'server.cert.pem'), gw.certPem);
  writeFileSync(join(dir, 'server.key.pem'), gw.keyPem!, { mode: 0o600 });
  return {
    dir,
    ca: readFileSync(caPaths(caDir).cert),
    deviceKey: Buffer.from(shared.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string),
    deviceCerts,
    manager: { cert: Buffer.from(mgr.certPem), key: Buffer.from(mgr.keyPem!) },
    server: { cert: join(dir, 'server.cert.pem'), key: join(dir, 'server.key.pem') },
  };
}

async function startBroker(
  kind: 'gateway' | 'mosquitto',
  pki: Pki,
): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const caDir = join(pki.dir, 'ca');
  let child: ChildProcess;
  if (kind === 'gateway') {
    const config = parseGatewayConfig({
      format: 'recorder-gateway/1',
      unit: UNIT,
      listen: { host: '127.0.0.1', port },
      tls: { ...pki.server, ca: caPaths(caDir).cert, crl: caPaths(caDir).crl },
      fleet: { offlineAfterMs: 600_000 },
    });
    writeFileSync(join(pki.dir, 'gateway.json'), JSON.stringify(config));
    child = spawn(
      process.execPath,
      [
        '--import=tsx',
        new URL('./fleet-gateway-child.ts', import.meta.url).pathname,
        join(pki.dir, 'gateway.json'),
        ...(process.env.FLEET_CPU_PROF ? [process.env.FLEET_CPU_PROF] : []),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
    });
  } else {
    const conf = join(pki.dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        `cafile ${caPaths(caDir).cert}`,
        `certfile ${pki.server.cert}`,
        `keyfile ${pki.server.key}`,
        `crlfile ${caPaths(caDir).crl}`,
        'require_certificate true',
        'use_identity_as_username true',
        'allow_anonymous false',
        'persistence false',
        'max_connections -1',
        'user root',
        'log_dest none',
        '',
      ].join('\n'),
    );
    child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
    await sleep(1000);
    if (child.exitCode !== null) throw new Error('mosquitto did not start');
  }
  return { child, port };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function runOne(kind: 'gateway' | 'mosquitto', pki: Pki, o: Options): Promise<BrokerResult> {
  const { child, port } = await startBroker(kind, pki);
  const url = `mqtts://127.0.0.1:${port}`;
  const latencies: number[] = [];
  let measuring = false;
  let sent = 0;
  const manager = await mqtt.connectAsync(url, {
    protocolVersion: 4,
    clientId: 'bench-manager:bench',
    ca: pki.ca,
    ...pki.manager,
    reconnectPeriod: 0,
  });
  manager.on('message', (_topic, payload) => {
    if (!measuring) return;
    const time = /"time":"([^"]+)"/.exec(payload.toString())?.[1];
    if (time) latencies.push(Date.now() - Date.parse(time));
  });
  await manager.subscribeAsync(`rec/v1/${UNIT}/+/status`, { qos: 1 });
  const t0 = Date.now();
  const clients: MqttClient[] = [];
  // Connect in batches: TLS handshakes are the expensive part.
  for (let i = 0; i < o.devices; i += 50) {
    const batch = pki.deviceCerts.slice(i, i + 50).map((cert, k) => {
      const id = `D${String(i + k).padStart(5, '0')}`;
      return mqtt
        .connectAsync(url, {
          protocolVersion: 4,
          clientId: id,
          ca: pki.ca,
          cert,
          key: pki.deviceKey,
          keepalive: 60,
          reconnectPeriod: 0,
          connectTimeout: 120_000,
        })
        .then((c) => {
          clients.push(c);
          return c;
        })
        .catch(() => undefined);
    });
    await Promise.all(batch);
  }
  const connectSeconds = (Date.now() - t0) / 1000;
  const timers: NodeJS.Timeout[] = [];
  for (const c of clients) {
    const id = c.options.clientId!;
    const topic = deviceTopic('status', UNIT, id);
    const publish = () => {
      if (measuring) sent++;
      c.publish(topic, JSON.stringify(statusOf(id)), { qos: 1, retain: true });
    };
    timers.push(
      setTimeout(() => {
        publish();
        timers.push(setInterval(publish, o.intervalMs));
      }, Math.random() * o.intervalMs),
    );
  }
  await sleep(Math.min(o.intervalMs, 10_000)); // warm-up: one round of statuses
  measuring = true;
  if (kind === 'gateway' && process.env.FLEET_CPU_PROF) child.kill('SIGUSR2');
  const start = procUsage(child.pid!);
  const startWall = Date.now();
  let peakRss = start.rss;
  for (let s = 0; s < o.seconds; s++) {
    await sleep(1000);
    peakRss = Math.max(peakRss, procUsage(child.pid!).rss);
  }
  const end = procUsage(child.pid!);
  const wall = Date.now() - startWall;
  if (kind === 'gateway' && process.env.FLEET_CPU_PROF) child.kill('SIGUSR2');
  measuring = false;
  await sleep(1000); // let in-flight statuses land
  for (const t of timers) clearTimeout(t);
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
  await manager.endAsync(true);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  latencies.sort((a, b) => a - b);
  return {
    broker: kind,
    devices: o.devices,
    connected: clients.length,
    connectSeconds: Math.round(connectSeconds * 10) / 10,
    messages: latencies.length,
    lost: Math.max(0, sent - latencies.length),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? NaN,
    rssMiB: Math.round((peakRss / 1048576) * 10) / 10,
    cpuPercent: Math.round(((end.cpuMs - start.cpuMs) / wall) * 1000) / 10,
  };
}

export async function run(argv: string[]): Promise<BrokerResult[]> {
  const o = parseOptions(argv);
  process.stdout.write(
    `fleet: ${o.devices} devices, status every ${o.intervalMs} ms, measuring ${o.seconds} s\n`,
  );
  const pki = makePki(o.devices);
  try {
    const results: BrokerResult[] = [];
    for (const kind of o.brokers) results.push(await runOne(kind, pki, o));
    console.table(results);
    const [g, m] = [
      results.find((r) => r.broker === 'gateway'),
      results.find((r) => r.broker === 'mosquitto'),
    ];
    if (g && m) {
      const ratio = (a: number, b: number) => Math.round((a / Math.max(b, 0.001)) * 100) / 100;
      process.stdout.write(
        `gateway/mosquitto ratios: p50 ${ratio(g.p50Ms, m.p50Ms)}×, p99 ${ratio(g.p99Ms, m.p99Ms)}×, ` +
          `RSS ${ratio(g.rssMiB, m.rssMiB)}×, CPU ${ratio(g.cpuPercent, m.cpuPercent)}×\n`,
      );
    }
    return results;
  } finally {
    rmSync(pki.dir, { recursive: true, force: true });
  }
}
