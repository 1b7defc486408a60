/**
 * Issue 5 benchmark: N simulated devices, each on its own TLS connection with its own certificate,
 * publishing a retained QoS 1 status every 10 s (random phase); one manager subscribed to all
 * statuses. The same load runs through our gateway (aedes + mutual TLS + ACL + schema validation +
 * fleet monitor) and through mosquitto with the same CA, certificates and placement, and the
 * gateway/mosquitto ratios are printed.
 *
 * How it is measured:
 * - Processes: the broker alone in its own process; the devices split over `--processes` forked
 *   device processes (bench/fleet-devices-child.ts, 1,250 devices each by default); the manager in
 *   one more process (bench/fleet-manager-child.ts). This orchestrating process only samples /proc.
 * - Placement (`--placement pinned`, the default on a machine with ≥ 2 CPUs): the broker is pinned
 *   with `taskset` to the last CPU and every load process to the others (on 2 cores: broker on core 1,
 *   devices and manager on core 0), identically for both brokers. `--placement shared` lets the
 *   scheduler put everything anywhere.
 * - Latency: each status carries `time` = the device process's `Date.now()` at publish; the manager
 *   process takes its own `Date.now()` on receipt (same machine clock, 1 ms resolution). Every status
 *   stamped inside the window counts: `lost` = stamped-and-sent minus received.
 * - Window: all devices connect; they start publishing; after one interval of warm-up (at most 10 s)
 *   the window of `--seconds` starts; after it 3 s of drain. Broker CPU (utime + stime of all its
 *   threads) and peak RSS come from /proc/PID/{stat,status} over the window; `cpuUsPerMsg` is that CPU
 *   time divided by the statuses delivered, `writesPerMsg` the broker's write system calls
 *   (/proc/PID/io syscw) likewise.
 * - Generator (`--generator`): `lean` (default) is one bare `node:tls` connection per device speaking
 *   the little MQTT the bench needs (bench/fleet-devices-lean-child.ts); `mqttjs` is one mqtt.js
 *   client per device (bench/fleet-devices-child.ts), the generator of the figures before 2026-11-23
 *   17:00 UTC. Both publish the same statuses with the same identities and phases.
 * - Attribution: every process measures itself over exactly the window (bench/fleet-health.ts):
 *   event-loop delay beyond its 5 ms sampling period (p50/p99/max) and GC pauses (count, total,
 *   longest and its kind, full collections); the gateway also stamps each status when aedes has
 *   routed it, so `in*` is the device → gateway leg of the end-to-end `p*` (mosquitto cannot be
 *   stamped). A tail in `in*` with a stall of the same size in the gateway's loop is the gateway's;
 *   one with a stalled device slice is the generator's; one only in `p*` with a stalled manager is the
 *   manager's. The connect phase (TLS handshakes) is outside the window: its stalls count nowhere.
 * - `load`: the 1-minute load average at the start and the end of the window, to tell a quiet
 *   machine's figures from a loaded one's; `stealPercent`: CPU time the hypervisor took from this VM
 *   over the window (bench/machine.ts), which no load average shows.
 *
 * Flags: --devices N (default 200), --seconds S (default 20), --interval-ms (default 10000),
 *        --broker gateway|mosquitto|both (default both), --processes K (default ceil(N / 1250)),
 *        --placement pinned|shared, --generator lean|mqttjs (default lean),
 *        --gateway-node-args "FLAGS" (extra node/V8 flags for the gateway process only).
 * Environment: FLEET_CPU_PROF=FILE writes a V8 CPU profile of the gateway over exactly the window.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { caPaths, initCa, issueCertificate } from '../gateway/ca.ts';
import { parseGatewayConfig } from '../gateway/config.ts';
import { GATEWAY_HEAP_FLAG } from '../gateway/heap.ts';
import { forkChild, launch, request } from './children.ts';
import { worstOf, type ProcessHealth } from './fleet-health.ts';
import { cpuTicks, stealPercent, writeCalls } from './machine.ts';

export const name = 'fleet';

/** parent → device process */
export type DevicesRequest =
  | {
      type: 'connect';
      url: string;
      ca: string;
      key: string;
      devices: { id: string; cert: string }[];
      /** concurrent handshakes per process */
      batch: number;
    }
  | { type: 'run'; unit: string; intervalMs: number; startAt: number; endAt: number }
  | { type: 'stop' };
export type DevicesReply =
  | { type: 'connected'; connected: number; failed: number; ms: number }
  /** `acked`: PUBACKs received (the lean generator only) */
  | { type: 'stopped'; sent: number; acked?: number; health: ProcessHealth };
/** parent → manager process */
export type ManagerRequest =
  | { type: 'connect'; url: string; ca: string; cert: string; key: string; id: string; filter: string }
  | { type: 'window'; startAt: number; endAt: number }
  | { type: 'stop' };
export type ManagerReply =
  { type: 'ready' } | { type: 'stopped'; latencies: number[]; health: ProcessHealth };
/** parent → gateway process (bench/fleet-gateway-child.ts) */
export type GatewayRequest = { type: 'window'; startAt: number; endAt: number } | { type: 'stop' };
/** `ingress`: per status stamped in the window, ms from the device's stamp to aedes having routed it */
export type GatewayReply = { type: 'stopped'; health: ProcessHealth; ingress: number[] };

type Broker = 'gateway' | 'mosquitto';

interface Options {
  devices: number;
  seconds: number;
  intervalMs: number;
  brokers: Broker[];
  processes: number;
  placement: 'pinned' | 'shared';
  generator: 'lean' | 'mqttjs';
  /** extra node/V8 flags for the gateway process, e.g. `--max-semi-space-size=32` */
  gatewayNodeArgs: string[];
}

export interface BrokerResult {
  broker: string;
  devices: number;
  connected: number;
  connectSeconds: number;
  sent: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  rssMiB: number;
  cpuPercent: number;
  cpuUsPerMsg: number;
  /** write(2)/writev(2)/sendmsg(2) calls of the broker per status delivered (one relay = PUBACK + PUBLISH) */
  writesPerMsg: number;
  /** gateway only: device stamp → aedes routed the status (the ingress leg of p50/p99/max) */
  inP50Ms?: number;
  inP99Ms?: number;
  inMaxMs?: number;
  /** 1-minute load average at the start and the end of the window */
  load: string;
  /** CPU time the hypervisor stole from the machine over the window, % (bench/machine.ts) */
  stealPercent: number;
}

/** One row of the attribution table: a process role's own event-loop delay and GC pauses. */
export interface HealthRow extends ProcessHealth {
  broker: string;
  role: 'gateway' | 'devices' | 'manager';
}

function flag(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
}

function parseOptions(argv: string[]): Options {
  const broker = flag(argv, 'broker', 'both');
  const devices = Number(flag(argv, 'devices', '200'));
  const placement = flag(argv, 'placement', availableParallelism() >= 2 ? 'pinned' : 'shared');
  if (placement !== 'pinned' && placement !== 'shared') throw new Error('--placement is pinned or shared');
  if (broker !== 'both' && broker !== 'gateway' && broker !== 'mosquitto')
    throw new Error('--broker is gateway, mosquitto or both');
  const generator = flag(argv, 'generator', 'lean');
  if (generator !== 'lean' && generator !== 'mqttjs') throw new Error('--generator is lean or mqttjs');
  return {
    devices,
    seconds: Number(flag(argv, 'seconds', '20')),
    intervalMs: Number(flag(argv, 'interval-ms', '10000')),
    brokers: broker === 'both' ? ['gateway', 'mosquitto'] : [broker],
    processes: Math.max(1, Number(flag(argv, 'processes', String(Math.ceil(devices / 1250))))),
    placement,
    generator,
    gatewayNodeArgs: flag(argv, 'gateway-node-args', '').split(' ').filter(Boolean),
  };
}

const UNIT = 'BENCH';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sleepUntil = (t: number) => sleep(Math.max(0, t - Date.now()));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** RSS (bytes), CPU time of all threads (ms) and write(2)-family calls of a process, from /proc. */
function procUsage(pid: number): { rss: number; cpuMs: number; writes: number } {
  const writes = writeCalls(pid);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime, proc(5)
  return { rss, cpuMs: (ticks * 1000) / 100, writes }; // USER_HZ is 100 on Linux
}

/** CPU lists for `taskset -c`: the broker on the last CPU, the load on the others. */
interface Placement {
  broker?: string;
  load?: string;
  text: string;
}

function placementOf(o: Options): Placement {
  const cpus = availableParallelism();
  if (o.placement === 'shared' || cpus < 2)
    return { text: `unpinned, ${o.processes} device processes + 1 manager process on ${cpus} CPUs` };
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('--placement pinned needs taskset (Debian package util-linux)');
  }
  const load = cpus === 2 ? '0' : `0-${cpus - 2}`;
  return {
    broker: String(cpus - 1),
    load,
    text: `broker pinned to CPU ${cpus - 1}, ${o.processes} device processes + 1 manager process on CPU ${load}`,
  };
}

interface Pki {
  dir: string;
  ca: string;
  deviceKey: string;
  devices: { id: string; cert: string }[];
  manager: { id: string; cert: string; key: string };
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
  const list: Pki['devices'] = [];
  for (let i = 0; i < devices; i++) {
    const id = `D${String(i).padStart(5, '0')}`;
    const issued = issueCertificate(caDir, {
      role: 'device',
      id,
      publicKeyPem,
      evidencePublicKeyPem: evidence,
    });
    list.push({ id, cert: issued.certPem });
  }
  const mgr = issueCertificate(caDir, { role: 'manager', id: 'bench-manager' });
  const gw = issueCertificate(caDir, { role: 'gateway', id: 'bench-gateway' });
  writeFileSync(join(dir, 'server.cert.pem'), gw.certPem);
  writeFileSync(join(dir, 'server.key.pem'), gw.keyPem!, { mode: 0o600 });
  return {
    dir,
    ca: readFileSync(caPaths(caDir).cert, 'utf8'),
    deviceKey: shared.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    devices: list,
    manager: { id: 'bench-manager', cert: mgr.certPem, key: mgr.keyPem! },
    server: { cert: join(dir, 'server.cert.pem'), key: join(dir, 'server.key.pem') },
  };
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`broker exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`broker did not listen on ${port}`);
}

async function startBroker(
  kind: Broker,
  pki: Pki,
  cpus: string | undefined,
  nodeArgs: string[],
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
    const profile = process.env.FLEET_CPU_PROF;
    const script = new URL('./fleet-gateway-child.ts', import.meta.url).pathname;
    child = launch(
      cpus,
      process.execPath,
      [
        ...nodeArgs,
        GATEWAY_HEAP_FLAG,
        '--import=tsx',
        script,
        join(pki.dir, 'gateway.json'),
        ...(profile ? [profile] : []),
      ],
      ['ignore', 'pipe', 'inherit', 'ipc'],
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
    child = launch(cpus, 'mosquitto', ['-c', conf], ['ignore', 'ignore', 'pipe']);
    // Its one line at start-up, "should not be run as root", is expected here; anything else is not.
    child.stderr!.on('data', (d: Buffer) => {
      const text = d.toString().replace(/^.*should not be run as root.*\n?/m, '');
      if (text.trim()) process.stderr.write(`mosquitto: ${text}`);
    });
    await waitForPort(port, child);
  }
  return { child, port };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

async function runOne(
  kind: Broker,
  pki: Pki,
  o: Options,
  place: Placement,
  healthRows: HealthRow[],
): Promise<BrokerResult> {
  const { child: broker, port } = await startBroker(kind, pki, place.broker, o.gatewayNodeArgs);
  const url = `mqtts://127.0.0.1:${port}`;
  const children: ChildProcess[] = [];
  try {
    const manager = forkChild(place.load, './fleet-manager-child.ts');
    children.push(manager);
    await request<ManagerReply>(
      manager,
      {
        type: 'connect',
        url,
        ca: pki.ca,
        ...pki.manager,
        filter: `rec/v1/${UNIT}/+/status`,
      } satisfies ManagerRequest,
      'ready',
    );
    const per = Math.ceil(pki.devices.length / o.processes);
    const slices = Array.from({ length: o.processes }, (_, k) =>
      pki.devices.slice(k * per, (k + 1) * per),
    ).filter((s) => s.length > 0);
    const generator = o.generator === 'lean' ? './fleet-devices-lean-child.ts' : './fleet-devices-child.ts';
    const devices = slices.map(() => forkChild(place.load, generator));
    children.push(...devices);
    const t0 = Date.now();
    const connected = await Promise.all(
      devices.map((d, k) =>
        request<Extract<DevicesReply, { type: 'connected' }>>(
          d,
          {
            type: 'connect',
            url,
            ca: pki.ca,
            key: pki.deviceKey,
            devices: slices[k]!,
            batch: Math.max(10, Math.floor(100 / slices.length)),
          } satisfies DevicesRequest,
          'connected',
        ),
      ),
    );
    const connectSeconds = (Date.now() - t0) / 1000;
    const warmUp = Math.min(o.intervalMs, 10_000);
    const startAt = Date.now() + warmUp;
    const endAt = startAt + o.seconds * 1000;
    manager.send({ type: 'window', startAt, endAt } satisfies ManagerRequest);
    if (kind === 'gateway') broker.send({ type: 'window', startAt, endAt } satisfies GatewayRequest);
    for (const d of devices)
      d.send({ type: 'run', unit: UNIT, intervalMs: o.intervalMs, startAt, endAt } satisfies DevicesRequest);

    await sleepUntil(startAt);
    const profiling = kind === 'gateway' && process.env.FLEET_CPU_PROF;
    if (profiling) broker.kill('SIGUSR2');
    const start = procUsage(broker.pid!);
    const loadStart = loadavg()[0]!;
    const ticksStart = cpuTicks();
    let peakRss = start.rss;
    while (Date.now() < endAt) {
      await sleep(Math.min(1000, endAt - Date.now()));
      peakRss = Math.max(peakRss, procUsage(broker.pid!).rss);
    }
    const end = procUsage(broker.pid!);
    const loadEnd = loadavg()[0]!;
    const steal = stealPercent(ticksStart, cpuTicks());
    const wall = Date.now() - startAt;
    if (profiling) broker.kill('SIGUSR2');
    await sleep(3000); // drain: statuses stamped inside the window still in flight

    const stopped = await Promise.all(
      devices.map((d) => request<Extract<DevicesReply, { type: 'stopped' }>>(d, { type: 'stop' }, 'stopped')),
    );
    const m = await request<Extract<ManagerReply, { type: 'stopped' }>>(manager, { type: 'stop' }, 'stopped');
    const g =
      kind === 'gateway'
        ? await request<GatewayReply>(broker, { type: 'stop' } satisfies GatewayRequest, 'stopped')
        : undefined;
    if (g) healthRows.push({ broker: kind, role: 'gateway', ...g.health });
    healthRows.push({ broker: kind, role: 'devices', ...worstOf(stopped.map((s) => s.health)) });
    healthRows.push({ broker: kind, role: 'manager', ...m.health });
    const latencies = m.latencies.sort((a, b) => a - b);
    const ingress = g?.ingress.sort((a, b) => a - b);
    const sent = stopped.reduce((n, s) => n + s.sent, 0);
    const cpuMs = end.cpuMs - start.cpuMs;
    return {
      broker: kind,
      devices: o.devices,
      connected: connected.reduce((n, c) => n + c.connected, 0),
      connectSeconds: round1(connectSeconds),
      sent,
      lost: sent - latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.at(-1) ?? NaN,
      rssMiB: round1(peakRss / 1048576),
      cpuPercent: round1((cpuMs / wall) * 100),
      cpuUsPerMsg: Math.round((cpuMs * 1000) / Math.max(1, latencies.length)),
      writesPerMsg: round1((end.writes - start.writes) / Math.max(1, latencies.length)),
      ...(ingress
        ? {
            inP50Ms: percentile(ingress, 50),
            inP99Ms: percentile(ingress, 99),
            inMaxMs: ingress.at(-1) ?? NaN,
          }
        : {}),
      load: `${loadStart.toFixed(1)}→${loadEnd.toFixed(1)}`,
      stealPercent: Math.round(steal),
    };
  } finally {
    const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
    for (const c of children) if (running(c)) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (running(c) ? once(c, 'exit') : undefined)));
    if (running(broker)) {
      broker.kill('SIGTERM');
      await once(broker, 'exit');
    }
  }
}

export async function run(argv: string[]): Promise<BrokerResult[]> {
  const o = parseOptions(argv);
  const place = placementOf(o);
  process.stdout.write(
    `fleet: ${o.devices} devices (${o.generator} generator), status every ${o.intervalMs} ms, ` +
      `measuring ${o.seconds} s; ${place.text}` +
      `${o.gatewayNodeArgs.length ? `; gateway node ${o.gatewayNodeArgs.join(' ')}` : ''}\n`,
  );
  const pki = makePki(o.devices);
  try {
    const results: BrokerResult[] = [];
    const health: HealthRow[] = [];
    for (const kind of o.brokers) results.push(await runOne(kind, pki, o, place, health));
    console.table(results);
    process.stdout.write(
      'each process over the window: event-loop delay p50/p99/max (ms) and GC pauses ' +
        '(devices: the worst slice, GC summed over slices)\n',
    );
    console.table(health);
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
