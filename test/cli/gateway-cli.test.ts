import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { renderFleetTable } from '../../cli/fleet-table.ts';
import { TelemetryClient } from '../../device/telemetry.ts';
import { loadGatewayConfig } from '../../gateway/config.ts';
import { startGateway } from '../../gateway/gateway.ts';
import { FleetMonitor } from '../../gateway/fleet-monitor.ts';
import { GATEWAY_HEAP_FLAG } from '../../gateway/heap.ts';
import { reapWithWorker } from '../helpers/child-reaper.ts';
import { RECORDER_BIN, runRecorder, spawnRecorder } from '../helpers/cli.ts';
import { connectAs, makeStatus, waitFor } from '../helpers/mqtt.ts';
import { testPki } from '../helpers/pki.ts';
import { alive, commandLine, processesNaming } from '../helpers/processes.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

test('the committed docs/asyncapi.json is what `recorder gateway asyncapi` generates', async (t) => {
  const r = await runRecorder(['gateway', 'asyncapi']);
  t.is(r.code, 0, r.stderr);
  const committed = readFileSync(new URL('../../docs/asyncapi.json', import.meta.url), 'utf8');
  t.is(r.stdout, committed, 'regenerate it: recorder gateway asyncapi > docs/asyncapi.json');
  const doc = JSON.parse(r.stdout);
  t.is(doc.asyncapi, '3.0.0');
  t.is(doc.channels.status.address, 'rec/v1/{unit}/{device}/status');
  t.is(doc.channels.fleet.address, 'rec/v1/{unit}/gateway/fleet');
});

test('ca init, ca issue, ca revoke, gateway init and fleet watch (table and --json) work end to end', async (t) => {
  needPrograms('openssl');
  const dir = tempDir(t);
  const ca = join(dir, 'ca');
  let r = await runRecorder(['ca', 'init', '--dir', ca, '--unit', 'SX-TY']);
  t.is(r.code, 0, r.stderr);
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', join(dir, 'ev.key')]);
  execFileSync('openssl', ['pkey', '-in', join(dir, 'ev.key'), '-pubout', '-out', join(dir, 'ev.pub')]);
  r = await runRecorder([
    'ca',
    'issue',
    '--dir',
    ca,
    '--role',
    'device',
    '--id',
    'SX-TY-0001',
    '--out',
    join(dir, 'dev'),
    '--evidence-key',
    join(dir, 'ev.pub'),
  ]);
  t.is(r.code, 0, r.stderr);
  t.is(statSync(join(dir, 'dev', 'device-SX-TY-0001.key.pem')).mode & 0o777, 0o600);
  r = await runRecorder([
    'ca',
    'issue',
    '--dir',
    ca,
    '--role',
    'device',
    '--id',
    'SX-TY-0002',
    '--out',
    join(dir, 'dev'),
  ]);
  t.is(r.code, 2);
  t.regex(r.stderr, /CA_BAD_REQUEST/);
  r = await runRecorder([
    'ca',
    'issue',
    '--dir',
    ca,
    '--role',
    'manager',
    '--id',
    'li.ming',
    '--out',
    join(dir, 'mgr'),
  ]);
  t.is(r.code, 0, r.stderr);
  const serial = /serial ([0-9A-F]+)/.exec(r.stdout)![1]!;
  const port = await freePort();
  r = await runRecorder([
    'gateway',
    'init',
    '--ca',
    ca,
    '--listen',
    `127.0.0.1:${port}`,
    '--out',
    join(dir, 'gw', 'gateway.json'),
  ]);
  t.is(r.code, 0, r.stderr);
  // Issue 6: the receipt-signing key pair next to the config; the output says where the public half is.
  t.is(statSync(join(dir, 'gw', 'receipt.key.pem')).mode & 0o777, 0o600);
  t.regex(readFileSync(join(dir, 'gw', 'receipt.pub.pem'), 'utf8'), /BEGIN PUBLIC KEY/);
  t.true(r.stdout.includes(join(dir, 'gw', 'receipt.pub.pem')), r.stdout);
  const config = loadGatewayConfig(join(dir, 'gw', 'gateway.json'));
  t.is(config.evidence.receiptKey, join(dir, 'gw', 'receipt.key.pem'));
  t.is(config.unit, 'SX-TY');
  config.fleet.publishIntervalMs = 300;
  const gw = await startGateway(config, { logSink: () => {} });
  const device = new TelemetryClient({
    url: gw.url,
    unit: 'SX-TY',
    device: 'SX-TY-0001',
    cert: readFileSync(join(dir, 'dev', 'device-SX-TY-0001.cert.pem')),
    key: readFileSync(join(dir, 'dev', 'device-SX-TY-0001.key.pem')),
    ca: readFileSync(join(dir, 'dev', 'ca.cert.pem')),
    getStatus: () => makeStatus('SX-TY-0001', { battery: { percent: 9, charging: false, minutesLeft: 25 } }),
  });
  t.teardown(async () => {
    await device.stop();
    await gw.close();
  });
  device.start();
  await new Promise((resolve) => device.once('connect', resolve));
  await new Promise((resolve) => setTimeout(resolve, 400));
  const watch = [
    'fleet',
    'watch',
    '--url',
    gw.url,
    '--cert',
    join(dir, 'mgr', 'manager-li.ming.cert.pem'),
    '--key',
    join(dir, 'mgr', 'manager-li.ming.key.pem'),
    '--ca',
    join(dir, 'mgr', 'ca.cert.pem'),
  ];
  r = await runRecorder([...watch, '--json', '--once'], { timeoutMs: 30_000 });
  t.is(r.code, 0, r.stderr);
  const fleet = JSON.parse(r.stdout.trim().split('\n')[0]!);
  t.is(fleet.unit, 'SX-TY');
  t.like(fleet.devices[0], { device: 'SX-TY-0001', batteryPercent: 9, alerts: ['battery-low'] });
  r = await runRecorder([...watch, '--once'], { timeoutMs: 30_000 });
  t.regex(r.stdout, /^!\s+SX-TY-0001\s+battery-low/m);
  // Revoking the manager locks it out.
  r = await runRecorder(['ca', 'revoke', '--dir', ca, '--serial', serial]);
  t.is(r.code, 0, r.stderr);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const before = gw.counters().tls;
  r = await runRecorder([...watch, '--once'], { timeoutMs: 20_000 });
  t.is(r.code, 2);
  t.true(gw.counters().tls > before);
});

test('the fleet table puts alerts first, one line per device, readable without decoding', (t) => {
  const m = new FleetMonitor('HN-CS', {
    publishIntervalMs: 1,
    offlineAfterMs: 60_000,
    batteryLowPercent: 20,
    storageLowMinutes: 60,
    clockDriftMs: 3000,
  });
  const now = Date.parse('2026-11-23T08:00:00.000Z');
  const time = new Date(now).toISOString();
  m.onStatus('HN-CS-0002', makeStatus('HN-CS-0002', { time }), now);
  m.onStatus(
    'HN-CS-0001',
    makeStatus('HN-CS-0001', {
      time,
      uploads: { pending: 4, oldestDeadline: new Date(now - 7_200_000).toISOString() },
    }),
    now,
  );
  const text = renderFleetTable(m.snapshot(now), now);
  const lines = text.trimEnd().split('\n');
  t.regex(lines[0]!, /2 devices, 2 online, 1 with alerts/);
  t.regex(lines[1]!, /DEVICE\s+ALERTS\s+STATE\s+BATTERY/);
  t.regex(lines[2]!, /^!\s+HN-CS-0001\s+upload-overdue\s+standby\s+80%.*OVERDUE 2 h/);
  t.regex(lines[3]!, /^\s+HN-CS-0002\s+ok\s+standby/);
  t.is(lines.length, 4);

  // The gateway's status adds a line under the title for a CRL due within 30 days, not before.
  const day = 86_400_000;
  const withCrls = (...days: number[]) =>
    renderFleetTable(m.snapshot(now), now, {
      unit: 'HN-CS',
      time,
      startedAt: time,
      clients: 2,
      crls: days.map((d, i) => ({
        unit: ['HN-CS', 'HN-ZZ'][i]!,
        nextUpdate: new Date(now + d * day).toISOString(),
      })),
      rejects: {} as never,
    })
      .trimEnd()
      .split('\n');
  t.is(withCrls(365, 31).length, 4);
  const soon = withCrls(12, -1);
  t.is(soon.length, 6);
  t.is(
    soon[1],
    '! gateway: the CRL of unit HN-CS expires 2026-12-05T08:00:00.000Z (in 12 d): re-sign it with recorder ca crl',
  );
  t.is(
    soon[2],
    '! gateway: the CRL of unit HN-ZZ EXPIRED 2026-11-22T08:00:00.000Z: the gateway refuses every client of that unit',
  );
  t.regex(soon[3]!, /DEVICE\s+ALERTS/);
});

test('`recorder gateway run` serves until SIGTERM, then stops cleanly with exit 0', async (t) => {
  const dir = tempDir(t);
  const ca = join(dir, 'ca');
  t.is((await runRecorder(['ca', 'init', '--dir', ca, '--unit', 'HN-CS'])).code, 0);
  t.is(
    (
      await runRecorder([
        'ca',
        'issue',
        '--dir',
        ca,
        '--role',
        'manager',
        '--id',
        'm',
        '--out',
        join(dir, 'm'),
      ])
    ).code,
    0,
  );
  const port = await freePort();
  const config = join(dir, 'gateway.json');
  t.is(
    (await runRecorder(['gateway', 'init', '--ca', ca, '--listen', `127.0.0.1:${port}`, '--out', config]))
      .code,
    0,
  );
  const child = spawnRecorder(['gateway', 'run', '--config', config]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.teardown(() => void child.kill('SIGKILL'));
  await waitFor(() => out.includes('gateway listening'), 30_000, 'the gateway to listen');
  const manager = await connectAs(
    `mqtts://127.0.0.1:${port}`,
    {
      cert: join(dir, 'm', 'manager-m.cert.pem'),
      key: join(dir, 'm', 'manager-m.key.pem'),
      ca: join(dir, 'm', 'ca.cert.pem'),
      serial: '',
      certPem: '',
    },
    'm',
  );
  const got: string[] = [];
  manager.on('message', (topic) => got.push(topic));
  await manager.subscribeAsync('rec/v1/HN-CS/gateway/status', { qos: 0 });
  await waitFor(() => got.length > 0, 5000, 'the retained gateway status');
  await manager.endAsync();
  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.regex(out, /"msg":"gateway stopped"/);
});

test('`recorder gateway run` without its heap flag runs the gateway again with it; SIGTERM and a killed parent both stop it', async (t) => {
  const pki = testPki(t, 'HN-CS');
  for (const how of ['SIGTERM', 'SIGKILL'] as const) {
    const config = join(pki.dir, `gateway-${how}.json`);
    writeFileSync(
      config,
      JSON.stringify(pki.config({ listen: { host: '127.0.0.1', port: await freePort() } })),
    );
    const parent = reapWithWorker(
      spawn(process.execPath, [RECORDER_BIN, 'gateway', 'run', '--config', config], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    t.teardown(() => void parent.kill('SIGKILL'));
    let out = '';
    parent.stdout.on('data', (d: Buffer) => (out += d));
    parent.stderr.on('data', (d: Buffer) => (out += d));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      parent.on('exit', (code, signal) => resolve({ code, signal })),
    );
    await waitFor(() => out.includes('gateway listening'), 30_000, 'the gateway to listen');
    // Besides bin/recorder.js, exactly one process runs this configuration: the gateway, with the flag.
    const [gateway, ...others] = processesNaming(config).filter((pid) => pid !== parent.pid);
    t.deepEqual(others, [], 'one gateway process');
    const argv = commandLine(gateway!) ?? [];
    t.true(argv.includes(GATEWAY_HEAP_FLAG) && argv.includes('run'), argv.join(' '));
    t.teardown(() => {
      if (alive(gateway!)) process.kill(gateway!, 'SIGKILL');
    });
    parent.kill(how);
    if (how === 'SIGTERM') {
      t.deepEqual(await exited, { code: 0, signal: null }, out);
      t.regex(out, /"msg":"gateway stopped"/, 'the gateway closed, not killed');
    } else {
      t.is((await exited).signal, 'SIGKILL');
    }
    // With bin/recorder.js gone the gateway closes too (its IPC channel closed) and leaves no
    // process behind to hold the port and the evidence store.
    await waitFor(() => !alive(gateway!), 30_000, `the gateway to stop after ${how} to its parent`);
  }
});

test('gateway init writes a center and a station that relays to it; wrong role options are refused', async (t) => {
  needPrograms('openssl');
  const dir = tempDir(t);
  const ca = join(dir, 'ca');
  t.is((await runRecorder(['ca', 'init', '--dir', ca, '--unit', 'HN-CS'])).code, 0);
  t.is((await runRecorder(['keys', 'center', '--out', join(dir, 'keys')])).code, 0);
  const centerKey = join(dir, 'keys', 'center.key.pem');
  // A second unit, whose station relays to the same center.
  const zz = join(dir, 'ca-zz');
  t.is((await runRecorder(['ca', 'init', '--dir', zz, '--unit', 'HN-ZZ'])).code, 0);
  const init = (id: string, port: number, ...extra: string[]) =>
    runRecorder([
      'gateway',
      'init',
      ...(extra.includes('--ca') ? [] : ['--ca', ca]),
      '--id',
      id,
      '--listen',
      `127.0.0.1:${port}`,
      '--out',
      join(dir, id, 'gateway.json'),
      ...extra,
    ]);

  // Refused, with what to do instead: nothing is written.
  for (const [args, why] of [
    [['--role', 'center'], /needs --center-key/],
    [['--role', 'provincial', '--center-key', centerKey], /--role must be station or center/],
    [['--center-key', centerKey], /for the center role only/],
    [['--upstream', 'mqtts://127.0.0.1:1'], /needs --upstream-receipt-key/],
    [
      ['--role', 'center', '--center-key', centerKey, '--upstream', 'mqtts://127.0.0.1:1'],
      /is for a station/,
    ],
    [['--admit-ca', zz], /--admit-ca is for the center role only/],
  ] as const) {
    const r = await init('refused', 1, ...args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, why);
  }
  const noCa = await init('refused', 1, '--role', 'center', '--center-key', centerKey, '--admit-ca', dir);
  t.not(noCa.code, 0);
  t.regex(noCa.stderr, /--admit-ca .*ca\.cert\.pem.*\(CA_MISSING\)/s);
  t.throws(() => statSync(join(dir, 'refused', 'gateway.json')));
  // A unit whose name starts HN-CS's ids: refused before the CA issues anything.
  const hn = join(dir, 'ca-hn');
  t.is((await runRecorder(['ca', 'init', '--dir', hn, '--unit', 'HN'])).code, 0);
  const prefix = await init('refused', 1, '--role', 'center', '--center-key', centerKey, '--admit-ca', hn);
  t.is(prefix.code, 2, prefix.stderr);
  t.regex(prefix.stderr, /unit HN-CS begins with unit HN and '-'.*\(GATEWAY_CONFIG_INVALID\)/);
  t.throws(() => statSync(join(dir, 'refused', 'gateway-refused.cert.pem')));
  t.throws(() => statSync(join(ca, 'issued', 'gateway-refused.cert.pem')));

  const centerPort = await freePort();
  let r = await init('center', centerPort, '--role', 'center', '--center-key', centerKey, '--admit-ca', zz);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /admits the stations of units HN-CS, HN-ZZ/);
  const centerReceipt = join(dir, 'center', 'receipt.pub.pem');
  t.true(r.stdout.includes(`--upstream-receipt-key ${centerReceipt}`), r.stdout);
  r = await init(
    'station',
    await freePort(),
    '--upstream',
    `mqtts://127.0.0.1:${centerPort}`,
    '--upstream-receipt-key',
    centerReceipt,
    '--purge-after-days',
    '0',
  );
  t.is(r.code, 0, r.stderr);
  const centerConfig = loadGatewayConfig(join(dir, 'center', 'gateway.json'));
  const stationConfig = loadGatewayConfig(join(dir, 'station', 'gateway.json'));
  t.is(centerConfig.evidence.role, 'center');
  t.is(centerConfig.evidence.centerKey, centerKey);
  t.is(centerConfig.upstream, undefined);
  t.deepEqual(centerConfig.units, [{ unit: 'HN-ZZ', ca: join(zz, 'ca.cert.pem'), crl: join(zz, 'crl.pem') }]);
  t.is(stationConfig.evidence.role, 'station');
  t.like(stationConfig.upstream, {
    url: `mqtts://127.0.0.1:${centerPort}`,
    cert: stationConfig.tls.cert,
    key: stationConfig.tls.key,
    ca: stationConfig.tls.ca,
    receiptKey: centerReceipt,
    purgeAfterDays: 0,
  });

  // HN-ZZ's station: its own unit CA, the center's CA to check the center by.
  r = await init(
    'station-zz',
    await freePort(),
    '--ca',
    zz,
    '--upstream',
    `mqtts://127.0.0.1:${centerPort}`,
    '--upstream-ca',
    join(ca, 'ca.cert.pem'),
    '--upstream-receipt-key',
    centerReceipt,
  );
  t.is(r.code, 0, r.stderr);
  const zzConfig = loadGatewayConfig(join(dir, 'station-zz', 'gateway.json'));
  t.is(zzConfig.unit, 'HN-ZZ');

  // All three start as written, and both stations' relays get through the center's mutual TLS.
  const logs: string[] = [];
  const logSink = (record: { msg: string }) => void logs.push(record.msg);
  const center = await startGateway(centerConfig, { logSink });
  t.teardown(() => center.close());
  for (const config of [stationConfig, zzConfig]) {
    const station = await startGateway(config, { logSink });
    t.teardown(() => station.close());
  }
  await waitFor(
    () => logs.filter((l) => l.includes('relay connected to the center')).length === 2,
    20_000,
    "both stations' relays to connect to the center",
  );
});
