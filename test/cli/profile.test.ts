import test from 'ava';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runRecorder } from '../helpers/cli.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';

test('keys center, profile init --sim with overrides, profile check, profile schema', async (t) => {
  const dir = tempDir(t);
  const keys = await runRecorder(['keys', 'center', '--out', join(dir, 'center')]);
  t.is(keys.code, 0, keys.stderr);
  t.is(statSync(join(dir, 'center', 'center.key.pem')).mode & 0o777, 0o600);
  const again = await runRecorder(['keys', 'center', '--out', join(dir, 'center')]);
  t.is(again.code, 2, 'an existing key is never overwritten');

  const profile = join(dir, 'profile.json');
  const init = await runRecorder([
    'profile',
    'init',
    '--sim',
    '--unit',
    'HN-CS',
    '--device',
    'HN-CS-0007',
    '--officer',
    'OF-1',
    'OF-2',
    '--center-pubkey',
    join(dir, 'center', 'center.pub.pem'),
    '--out',
    profile,
    '--state',
    join(dir, 'state'),
    '--segment-seconds',
    '4',
    '--prerecord-seconds',
    '8',
    '--postrecord-seconds',
    '3',
    '--width',
    '320',
    '--height',
    '240',
    '--fps',
    '15',
  ]);
  t.is(init.code, 0, init.stderr);
  const p = JSON.parse(readFileSync(profile, 'utf8'));
  t.deepEqual(p.officers, ['OF-1', 'OF-2']);
  t.like(p.capture, {
    source: 'sim',
    encoder: 'x264enc',
    segmentSeconds: 4,
    prerecordSeconds: 8,
    postrecordSeconds: 3,
    width: 320,
    height: 240,
    fps: 15,
  });
  t.is(p.storage.evidenceDir, join(dir, 'state', 'evidence'));
  t.regex(p.storage.spoolDir, /^\/dev\/shm\/recorder-spool-[0-9a-f]{12}$/, 'the plaintext spool is in RAM');
  t.is(p.centerPublicKey, readFileSync(join(dir, 'center', 'center.pub.pem'), 'utf8'));

  const check = await runRecorder(['profile', 'check', profile]);
  t.is(check.code, 0, check.stdout + check.stderr);
  t.regex(check.stdout, /: OK/);

  const schema = await runRecorder(['profile', 'schema']);
  t.is(schema.code, 0);
  const json = JSON.parse(schema.stdout);
  t.is(json.title, 'Recorder device profile');
  t.truthy(json.properties.capture.properties.prerecordSeconds);
});

test('profile init refuses out-of-range overrides and a missing center key, naming them', async (t) => {
  const dir = tempDir(t);
  await runRecorder(['keys', 'center', '--out', join(dir, 'c')]);
  const base = [
    'profile',
    'init',
    '--sim',
    '--unit',
    'U',
    '--device',
    'D',
    '--officer',
    'O',
    '--out',
    join(dir, 'p.json'),
  ];
  const bad = await runRecorder([
    ...base,
    '--center-pubkey',
    join(dir, 'c', 'center.pub.pem'),
    '--fps',
    '500',
    '--width',
    '99999',
  ]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /\/capture\/fps: /);
  t.regex(bad.stderr, /\/capture\/width: /);
  const nokey = await runRecorder([...base, '--center-pubkey', join(dir, 'missing.pem')]);
  t.is(nokey.code, 2);
  t.regex(nokey.stderr, /--center-pubkey .*missing\.pem does not exist \(KEY_MISSING\)/);
});

test('profile check lists every problem with its field and exits 1; --on-device checks the encoder', async (t) => {
  needPrograms('gst-inspect-1.0');
  const dir = tempDir(t);
  const doc = JSON.parse(readFileSync(new URL('../../profiles/examples/sim.json', import.meta.url), 'utf8'));
  doc.capture.fps = 'thirty';
  doc.capture.audio = 'yes';
  doc.officers = 'OF-1';
  delete doc.centerPublicKey;
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify(doc));
  const r = await runRecorder(['profile', 'check', file]);
  t.is(r.code, 1);
  for (const path of ['/capture/fps', '/capture/audio', '/officers', '/centerPublicKey'])
    t.regex(r.stdout, new RegExp(`  ${path}: `));
  const j = await runRecorder(['profile', 'check', '--json', file]);
  t.is(JSON.parse(j.stdout).problems.length, 4);

  const good = JSON.parse(readFileSync(new URL('../../profiles/examples/sim.json', import.meta.url), 'utf8'));
  good.capture.encoder = 'nosuchh264enc';
  writeFileSync(file, JSON.stringify(good));
  t.is(
    (await runRecorder(['profile', 'check', file])).code,
    0,
    'without --on-device the element is not looked up',
  );
  const onDevice = await runRecorder(['profile', 'check', '--on-device', file]);
  t.is(onDevice.code, 1);
  t.regex(onDevice.stdout, / {2}\/capture\/encoder: GStreamer element 'nosuchh264enc' is not installed/);
  t.is((await runRecorder(['profile', 'check', join(dir, 'none.json')])).code, 2);
});

test('profile init --gateway puts the station and the TLS identity in the profile; a partial set is refused', async (t) => {
  const dir = tempDir(t);
  const keys = await runRecorder(['keys', 'center', '--out', join(dir, 'center')]);
  t.is(keys.code, 0, keys.stderr);
  const base = ['profile', 'init', '--sim', '--unit', 'HN', '--device', 'D1', '--officer', 'O1', '--center-pubkey', join(dir, 'center', 'center.pub.pem'), '--state', join(dir, 'state')]; // prettier-ignore
  const ok = await runRecorder([...base, '--out', join(dir, 'p.json'), '--gateway', 'mqtts://127.0.0.1:8883', '--cert', 'c.pem', '--key', 'k.pem', '--ca', 'ca.pem']); // prettier-ignore
  t.is(ok.code, 0, ok.stderr);
  const profile = JSON.parse(readFileSync(join(dir, 'p.json'), 'utf8'));
  t.is(profile.gateway.url, 'mqtts://127.0.0.1:8883');
  t.true(profile.gateway.cert.endsWith('/c.pem'));
  const partial = await runRecorder([
    ...base,
    '--out',
    join(dir, 'q.json'),
    '--gateway',
    'mqtts://127.0.0.1:8883',
  ]);
  t.is(partial.code, 2);
  t.regex(partial.stderr, /CLI_USAGE/);
});
