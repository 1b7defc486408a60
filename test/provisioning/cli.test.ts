import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runRecorder, spawnRecorder } from '../helpers/cli.ts';
import { startPtyPair } from '../helpers/socat.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';
import { makeUnitCa, sampleProfile } from '../helpers/unit-ca.ts';

test('recorder profile sign / verify / device factory / flash, as a technician runs them', async (t) => {
  needPrograms('socat', 'openssl');
  const dir = tempDir(t);
  const ca = makeUnitCa(join(dir, 'ca'));
  writeFileSync(join(dir, 'p1.json'), JSON.stringify(sampleProfile('HN-CS-0007', 1)));
  writeFileSync(join(dir, 'p2.json'), JSON.stringify(sampleProfile('HN-CS-0007', 2, 'O-2002')));
  for (const n of ['1', '2']) {
    const signed = await runRecorder([
      'profile',
      'sign',
      join(dir, `p${n}.json`),
      '--ca',
      ca.dir,
      '--out',
      join(dir, `s${n}.json`),
    ]);
    t.is(signed.code, 0, signed.stderr);
  }
  const ok = await runRecorder([
    'profile',
    'verify',
    join(dir, 's1.json'),
    '--ca',
    join(ca.dir, 'ca.cert.pem'),
    '--device',
    'HN-CS-0007',
  ]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /OK, profile for HN-CS-0007 version 1/);
  const old = await runRecorder([
    'profile',
    'verify',
    join(dir, 's1.json'),
    '--ca',
    join(ca.dir, 'ca.cert.pem'),
    '--current-version',
    '1',
  ]);
  t.is(old.code, 1);
  t.regex(old.stdout, /REFUSED PROFILE_ROLLBACK/);
  const other = await runRecorder([
    'profile',
    'verify',
    join(dir, 's1.json'),
    '--ca',
    join(ca.dir, 'ca.cert.pem'),
    '--device',
    'HN-CS-0008',
  ]);
  t.regex(other.stdout, /REFUSED PROFILE_WRONG_DEVICE/);

  let pair = await startPtyPair(dir, 'cable');
  t.teardown(() => pair.kill());
  const device = spawnRecorder([
    'device',
    'factory',
    '--state',
    join(dir, 'state'),
    '--service-port',
    pair.a,
  ]);
  let deviceOut = '';
  device.stdout.on('data', (d: Buffer) => (deviceOut += d));
  device.stderr.on('data', (d: Buffer) => (deviceOut += d));
  const exited = new Promise<number | null>((resolve) => device.on('exit', (code) => resolve(code)));
  t.teardown(() => void device.kill());
  while (!deviceOut.includes('maintenance mode')) {
    if (device.exitCode !== null) t.fail(deviceOut);
    await new Promise((r) => setTimeout(r, 50));
  }
  t.regex(deviceOut, /device \(unnumbered\), identity none, profile none/);

  const noCa = await runRecorder(['flash', '--port', pair.b, '--profile', join(dir, 's1.json')]);
  t.is(noCa.code, 2);
  t.regex(noCa.stderr, /give --ca DIR.*CLI_USAGE/);

  const first = await runRecorder([
    'flash',
    '--port',
    pair.b,
    '--profile',
    join(dir, 's1.json'),
    '--ca',
    ca.dir,
  ]);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /device HN-CS-0007: identity provisioned, profile version 1/);
  t.regex(first.stdout, /certificate installed; profile applied/);

  // Pull the cable (socat dies, both pty ends vanish) and plug a new one in: the device waits for
  // its service port to come back and answers again.
  await pair.kill();
  pair = await startPtyPair(dir, 'cable');
  while (!deviceOut.includes('is back')) {
    if (device.exitCode !== null) t.fail(deviceOut);
    await new Promise((r) => setTimeout(r, 50));
  }
  const second = await runRecorder([
    'flash',
    '--port',
    pair.b,
    '--profile',
    join(dir, 's2.json'),
    '--reboot',
  ]);
  t.is(second.code, 0, second.stderr);
  t.regex(second.stdout, /profile version 2, unit HN-CS, officers O-2002/);
  t.is(await exited, 0);
  t.regex(deviceOut, /rebooting into service/);
});
