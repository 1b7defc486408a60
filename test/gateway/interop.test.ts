/**
 * Issue 5 item 5: `mosquitto_sub` with a manager certificate reads device status from our gateway,
 * and our device client works against a mosquitto broker set up with the same unit CA.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { TelemetryClient } from '../../device/telemetry.ts';
import { caPaths } from '../../gateway/ca.ts';
import { startGateway } from '../../gateway/gateway.ts';
import type { CommandResult } from '../../protocol/schemas/command.ts';
import { deviceTopic } from '../../protocol/topics.ts';
import { connectAs, makeStatus, tlsOptions, waitFor } from '../helpers/mqtt.ts';
import { testPki } from '../helpers/pki.ts';
import { needPrograms } from '../helpers/system.ts';
import { reapWithWorker } from '../helpers/child-reaper.ts';

const U = 'HN-CS';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = reapWithWorker(spawn(cmd, args, { timeout: timeoutMs }));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('mosquitto_sub with a manager certificate reads device status from the gateway', async (t) => {
  needPrograms('mosquitto_sub');
  const pki = testPki(t, U);
  const gw = await startGateway(pki.config(), { logSink: () => {} });
  const D = 'HN-CS-0020';
  const device = new TelemetryClient({
    url: gw.url,
    unit: U,
    device: D,
    ...tlsOptions(pki.issue('device', D)),
    getStatus: () => makeStatus(D, { officer: 'O-77' }),
  });
  t.teardown(async () => {
    await device.stop();
    await gw.close();
  });
  device.start();
  await new Promise((r) => device.once('connect', r));
  const m = pki.issue('manager', 'm1');
  const args = [
    '-V',
    'mqttv311',
    '-h',
    '127.0.0.1',
    '-p',
    String(gw.address.port),
    '--cafile',
    m.ca,
    '--cert',
    m.cert,
    '--key',
    m.key,
  ];
  const sub = await run(
    'mosquitto_sub',
    [...args, '-i', 'm1:mosquitto-sub', '-t', deviceTopic('status', U, D), '-C', '1', '-W', '20'],
    30_000,
  );
  t.is(sub.code, 0, sub.stderr);
  const status = JSON.parse(sub.stdout);
  t.is(status.device, D);
  t.is(status.officer, 'O-77');
  // The same tool may not read what a manager may not: a refused subscription delivers nothing.
  const refused = await run(
    'mosquitto_sub',
    [...args, '-i', 'm1:mosquitto-sub2', '-t', '#', '-C', '1', '-W', '2'],
    10_000,
  );
  t.is(refused.stdout, '');
});

test('the device client works against mosquitto set up with the same CA', async (t) => {
  needPrograms('mosquitto');
  const pki = testPki(t, U);
  const port = await freePort();
  const broker = pki.issue('gateway', 'mosquitto');
  const conf = join(pki.dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      `cafile ${caPaths(pki.caDir).cert}`,
      `certfile ${broker.cert}`,
      `keyfile ${broker.key}`,
      `crlfile ${caPaths(pki.caDir).crl}`,
      'require_certificate true',
      'use_identity_as_username true',
      'allow_anonymous false',
      'persistence false',
      'user root',
      'log_dest stderr',
      '',
    ].join('\n'),
  );
  const mosquitto: ChildProcess = reapWithWorker(
    spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] }),
  );
  let log = '';
  mosquitto.stderr!.on('data', (d: Buffer) => (log += d));
  t.teardown(() => void mosquitto.kill());
  await waitFor(
    () => /running|Opening ipv4 listen socket/.test(log) || mosquitto.exitCode !== null,
    10_000,
    'mosquitto',
  );
  t.is(mosquitto.exitCode, null, log);
  const url = `mqtts://127.0.0.1:${port}`;
  const D = 'HN-CS-0021';
  const device = new TelemetryClient({
    url,
    unit: U,
    device: D,
    ...tlsOptions(pki.issue('device', D)),
    getStatus: () => makeStatus(D),
    handlers: { locate: () => ({ buzzing: true }) },
  });
  t.teardown(() => device.stop());
  let manager;
  for (let i = 0; i < 20 && !manager; i++) {
    manager = await connectAs(url, pki.issue('manager', `m${i}`), `m${i}`).catch(() =>
      new Promise((r) => setTimeout(r, 250)).then(() => undefined),
    );
  }
  if (!manager) return t.fail(`cannot connect to mosquitto:\n${log}`);
  t.teardown(() => manager.endAsync());
  const got: Record<string, string[]> = {};
  manager.on('message', (topic, payload) => (got[topic] ??= []).push(payload.toString()));
  await manager.subscribeAsync(
    [deviceTopic('status', U, D), deviceTopic('availability', U, D), deviceTopic('cmdResult', U, D)],
    { qos: 1 },
  );
  device.start();
  await waitFor(
    () => (got[deviceTopic('status', U, D)]?.length ?? 0) >= 1,
    15_000,
    'the status through mosquitto',
  );
  t.is(JSON.parse(got[deviceTopic('status', U, D)]![0]!).device, D);
  t.deepEqual(got[deviceTopic('availability', U, D)], ['online']);
  // Commands work too; mosquitto does not validate, so the device's own check answers the invalid one.
  await manager.publishAsync(
    deviceTopic('cmd', U, D),
    JSON.stringify({ id: 'k1', name: 'locate', time: new Date().toISOString() }),
    { qos: 1 },
  );
  await manager.publishAsync(
    deviceTopic('cmd', U, D),
    JSON.stringify({ id: 'k2', name: 'explode', time: 'now' }),
    { qos: 1 },
  );
  await waitFor(() => (got[deviceTopic('cmdResult', U, D)]?.length ?? 0) >= 2, 10_000, 'two replies');
  const results = got[deviceTopic('cmdResult', U, D)]!.map((r) => JSON.parse(r) as CommandResult);
  t.like(
    results.find((r) => r.id === 'k1'),
    { ok: true, result: { buzzing: true } },
  );
  t.like(
    results.find((r) => r.id === 'k2'),
    { ok: false, error: { code: 'MQTT_PAYLOAD_INVALID' } },
  );
});
