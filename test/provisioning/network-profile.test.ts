/**
 * Issue 7 "Done when": a factory-new simulated recorder goes from nothing to recording for the
 * gateway with `recorder flash` and one signed profile, and its officer changes later over the
 * network (`recorder device assign`). Real processes throughout: the device in maintenance mode on
 * a socat pty, the flash tool, the recorder (GStreamer capture), the gateway over mutual TLS.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { statePaths } from '../../device/state-paths.ts';
import { startGateway } from '../../gateway/gateway.ts';
import { runRecorder, spawnRecorder } from '../helpers/cli.ts';
import { DeviceProcess, journalEntries, simRecorderFiles } from '../helpers/device-process.ts';
import { waitFor } from '../helpers/mqtt.ts';
import { testPki } from '../helpers/pki.ts';
import { startPtyPair } from '../helpers/socat.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';

const D = 'HN-CS-0009';

test('factory-new → flash with one signed profile → records for the gateway → device assign changes the officer', async (t) => {
  needPrograms('socat', 'openssl');
  const dir = tempDir(t);
  const pki = testPki(join(dir, 'unit'), 'HN-CS');
  const config = pki.config({
    profilesDir: join(dir, 'station', 'profiles'),
    fleet: { publishIntervalMs: 200 },
  });
  const gw = await startGateway(config, { logSink: () => {} });
  t.teardown(() => gw.close());
  const gatewayConfig = join(dir, 'gateway.json');
  writeFileSync(
    gatewayConfig,
    JSON.stringify({ ...config, listen: { host: '127.0.0.1', port: gw.address.port } }),
  );

  // One profile, written and signed by the technician before the device has any identity: the
  // gateway section names where flashing puts the device's certificate, key and pinned CA.
  const files = await simRecorderFiles(dir);
  const state = statePaths(files.state);
  const profile = join(dir, 'profile.json');
  const init = await runRecorder([
    'profile', 'init', '--sim', '--unit', 'HN-CS', '--device', D, '--officer', 'O-1001',
    '--center-pubkey', join(dir, 'center', 'center.pub.pem'), '--out', profile, '--state', files.state,
    '--segment-seconds', '1', '--prerecord-seconds', '2', '--postrecord-seconds', '1',
    '--width', '320', '--height', '240', '--fps', '10', '--force',
    '--gateway', gw.url, '--cert', state.tlsCert, '--key', state.tlsKey, '--ca', state.caCert,
  ]); // prettier-ignore
  t.is(init.code, 0, init.stderr);
  const signed = join(dir, 'profile.signed.json');
  const sign = await runRecorder(['profile', 'sign', profile, '--ca', pki.caDir, '--out', signed]);
  t.is(sign.code, 0, sign.stderr);

  const pair = await startPtyPair(dir, 'cable');
  t.teardown(() => pair.kill());
  const factory = spawnRecorder(['device', 'factory', '--state', files.state, '--service-port', pair.a]);
  let factoryOut = '';
  factory.stdout.on('data', (d: Buffer) => (factoryOut += d));
  factory.stderr.on('data', (d: Buffer) => (factoryOut += d));
  const factoryExit = new Promise<number | null>((resolve) => factory.on('exit', resolve));
  t.teardown(() => void factory.kill());
  await waitFor(() => factoryOut.includes('maintenance mode'), 30_000, 'maintenance mode');
  const flash = await runRecorder([
    'flash',
    '--port',
    pair.b,
    '--profile',
    signed,
    '--ca',
    pki.caDir,
    '--reboot',
  ]);
  t.is(flash.code, 0, flash.stderr);
  t.regex(flash.stdout, /device HN-CS-0009: identity provisioned, profile version 1/);
  t.is(await factoryExit, 0, factoryOut);

  // In service: no --profile, the flashed one in force; it connects with the flashed certificate.
  const device = await DeviceProcess.start(t, { ...files, profile: '' });
  await waitFor(
    () => gw.fleet().devices.some((d) => d.device === D && d.online),
    30_000,
    'the device online at the gateway',
  );
  t.is((await device.press('record')).state, 'recording');
  await waitFor(
    () => gw.fleet().devices.find((d) => d.device === D)?.state === 'recording',
    15_000,
    'recording at the gateway',
  );

  const assign = await runRecorder([
    'device', 'assign', D, '--officer', 'O-2002', '--gateway', gatewayConfig, '--profile', signed,
  ]); // prettier-ignore
  t.is(assign.code, 0, assign.stderr + assign.stdout);
  t.regex(assign.stdout, /HN-CS-0009: profile version 2 applied, officer O-2002/);
  const status = await device.until((s) => s.officer === 'O-2002' && s.profile.version === 2, 10_000);
  t.is(status.state, 'recording', 'the recording goes on');
  await device.until((s) => s.watermark.includes('O-2002'), 5000);
  await waitFor(
    () => gw.fleet().devices.find((d) => d.device === D)?.officer === 'O-2002',
    15_000,
    'the officer at the gateway',
  );

  await device.press('record', 'long');
  await device.until((s) => s.state === 'standby', 30_000);
  t.is(await device.stop('SIGINT'), 0, device.output);
  const entries = journalEntries(files.state);
  t.like(
    entries.find((e) => e.kind === 'profile-accepted' && e.body.source === 'mqtt'),
    { body: { version: 2 } },
  );
  t.like(
    entries.find((e) => e.kind === 'officer-assigned'),
    { body: { officer: 'O-2002', previous: 'O-1001' } },
  );
  const verify = await runRecorder(['journal', 'verify', state.journal, '--pubkey', state.publicKey]);
  t.is(verify.code, 0, verify.stdout);
});
