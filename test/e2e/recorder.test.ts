import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runRecorder } from '../helpers/cli.ts';
import { DeviceProcess, journalEntries, simRecorderFiles, sleep } from '../helpers/device-process.ts';
import { tempDir } from '../helpers/temp.ts';

test('record with pre-record, mark, photo, stop: sealed segments cover the pre-record without gaps and verify', async (t) => {
  const files = await simRecorderFiles(tempDir(t));
  const device = await DeviceProcess.start(t, files);
  await sleep(5000); // let the spool ring hold more than the pre-record
  const pressedAt = Date.now();
  const recording = await device.press('record');
  t.is(recording.state, 'recording');
  await sleep(2500);
  await device.press('mark');
  await device.press('photo');
  // A short press while recording is a bump: it never stops the recording.
  t.is((await device.press('record')).state, 'recording');
  const cli = await runRecorder(['device', 'press', 'record', '--long', '--state', files.state]);
  t.is(cli.code, 0, cli.stderr);
  t.regex(cli.stdout, /STOPPING/);
  await device.until((s) => s.state === 'standby');
  await sleep(1500);
  t.is(await device.stop('SIGINT'), 0, device.output);

  const entries = journalEntries(files.state);
  const start = entries.find((e) => e.kind === 'record-start')!;
  const segments = entries.filter((e) => e.kind === 'segment' && e.body.event === start.body.event);
  t.true(segments.length >= 5, `${segments.length} segments`);
  // Pre-record (R2): the event reaches back at least 3 s before the press (one frame of tolerance).
  const coveredFrom = Date.parse(segments[0]!.body.start);
  t.true(pressedAt - coveredFrom >= 3000 - 100, `covered ${pressedAt - coveredFrom} ms before the press`);
  t.is(segments[0]!.body.reason, 'prerecord');
  t.deepEqual(
    segments.map((s) => s.body.segment),
    segments.map((_, i) => i),
  );
  // No gap and no overlap between consecutive segments (within one frame at 10 fps).
  for (let i = 1; i < segments.length; i++) {
    const gap = Date.parse(segments[i]!.body.start) - Date.parse(segments[i - 1]!.body.end);
    t.true(Math.abs(gap) <= 100, `gap of ${gap} ms before segment ${i}`);
  }
  t.truthy(entries.find((e) => e.kind === 'mark' && e.body.event === start.body.event));
  t.truthy(entries.find((e) => e.kind === 'photo'));
  t.truthy(entries.find((e) => e.kind === 'announcement'));
  t.deepEqual(
    entries.filter((e) => e.kind === 'state').map((e) => e.body.to),
    ['recording', 'stopping', 'standby'],
  );

  const verify = await runRecorder([
    'verify',
    '--state',
    files.state,
    '--center-key',
    files.centerKey,
    '--json',
  ]);
  t.is(verify.code, 0, verify.stdout + verify.stderr);
  const report = JSON.parse(verify.stdout);
  t.true(report.ok);
  t.is(report.segments, entries.filter((e) => e.kind === 'segment' || e.kind === 'photo').length);
});

test('SIGKILL of the device process mid-recording: after restart the torn segment is recovered and verify passes', async (t) => {
  const files = await simRecorderFiles(tempDir(t));
  const first = await DeviceProcess.start(t, files);
  await first.press('record');
  await sleep(3500);
  await first.stop('SIGKILL');
  await sleep(1500); // the orphaned capture child closes its segment and exits
  const second = await DeviceProcess.start(t, files);
  await sleep(1000);
  t.is(await second.stop('SIGINT'), 0, second.output);
  const entries = journalEntries(files.state);
  const recovered = entries.filter((e) => e.kind === 'segment' && e.body.recovered === true);
  t.true(recovered.length >= 1, 'the segment open at the kill was sealed as recovered');
  const verify = await runRecorder([
    'verify',
    '--state',
    files.state,
    '--center-key',
    files.centerKey,
    '--json',
  ]);
  t.is(verify.code, 0, verify.stdout + verify.stderr);
});

test('storage below the minimum: recording is refused with the reason, and no evidence is deleted', async (t) => {
  const dir = tempDir(t);
  const small = join(dir, 'small-volume');
  mkdirSync(small);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
  t.teardown(() => execFileSync('umount', ['-l', small]));
  const files = await simRecorderFiles(dir, (p) => {
    p.storage.evidenceDir = join(small, 'evidence');
    p.storage.minimumMB = 2;
    p.storage.reserveMB = 4;
  });
  mkdirSync(join(small, 'evidence'));
  writeFileSync(join(small, 'evidence', 'earlier.ts.enc'), 'not receipted yet');
  const device = await DeviceProcess.start(t, files);
  const status = await device.until((s) => s.storage.level === 'refuse');
  t.regex(status.storage.reason ?? '', /below the minimum of 2 MB/);
  const after = await device.press('record');
  t.is(after.state, 'standby');
  t.is(await device.stop('SIGINT'), 0, device.output);
  const refused = journalEntries(files.state).find((e) => e.kind === 'record-refused');
  t.regex(refused?.body.reason ?? '', /recording refused/);
  t.true(existsSync(join(small, 'evidence', 'earlier.ts.enc')));
  t.true(readdirSync(join(small, 'evidence')).includes('earlier.ts.enc'));
});

test('the watermark shows the position replayed from a real receiver log, and the time with its zone', async (t) => {
  const log = new URL('../../../shared/nmea/beidou-gb.log', import.meta.url).pathname;
  // GPSD's own decoding of the same log: every position it reported, as the watermark prints them.
  const reference = new Set(
    readFileSync(`${log}.chk`, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{"class":"TPV"'))
      .map((l) => JSON.parse(l))
      .filter((tpv) => tpv.mode >= 2)
      .map((tpv) => position(tpv.lat, tpv.lon)),
  );
  t.true(reference.size > 0);
  const files = await simRecorderFiles(tempDir(t));
  const device = await DeviceProcess.start(t, files, ['--gnss-replay', log]);
  const status = await device.until((s) => s.gnss !== null && s.gnss.mode >= 2, 20_000);
  t.true(
    reference.has(position(status.gnss!.lat!, status.gnss!.lon!)),
    'the fix is one GPSD decoded from the log',
  );
  const marked = await device.until((s) => [...reference].some((p) => s.watermark.includes(p)), 5000);
  t.regex(marked.watermark, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00 HN-CS-0001 HN-0427 /);
  t.notRegex(marked.watermark, /NO FIX/);
  t.is(await device.stop('SIGINT'), 0, device.output);
});

function position(lat: number, lon: number): string {
  return `${Math.abs(lat).toFixed(5)}${lat >= 0 ? 'N' : 'S'} ${Math.abs(lon).toFixed(5)}${lon >= 0 ? 'E' : 'W'}`;
}

test('npm start (recorder demo): the recorder reports to a station gateway over mutual TLS and everything verifies', async (t) => {
  const state = tempDir(t);
  const result = await runRecorder(
    ['demo', '--state', state, '--script', 'wait 3; record; wait 3; mark; stop; wait 3'],
    {
      timeoutMs: 120_000,
    },
  );
  t.is(result.code, 0, result.stdout + result.stderr);
  t.regex(result.stdout, /station gateway mqtts:\/\/127\.0\.0\.1:\d+ \(mutual TLS/);
  // The station saw the recording and then the device back in standby, with its sealed uploads pending.
  t.regex(result.stdout, /station: HN-CS-0001 online recording/);
  t.regex(result.stdout, /HN-CS-0001 +ok +(recording|stopping|standby) +100%/);
  t.regex(
    result.stdout,
    /verification: OK — \d+ journal entries, chain intact: true; (\d+) sealed items: 0 receipted by the station and gone from the device, \1 of \1 still on it decrypted/,
  );
  const marks = journalEntries(state).filter((e) => e.kind === 'mark');
  t.is(marks.length, 1);
});

test('npm start (recorder demo) docks: the recording travels to the station and on to the center, every store verifies', async (t) => {
  const state = tempDir(t);
  const result = await runRecorder(
    ['demo', '--state', state, '--script', 'wait 3; record; wait 3; mark; stop; wait 2; dock; upload'],
    { timeoutMs: 240_000 },
  );
  t.is(result.code, 0, result.stdout + result.stderr);
  t.regex(result.stdout, /upload \[=+\] (\d+)\/\1 bytes, 0 item\(s\) left/);
  const held = /the station holds (\d+) item\(s\), each receipted/.exec(result.stdout);
  const relayed = /relayed to the center: (\d+) item\(s\), plaintext checked at ingest/.exec(result.stdout);
  t.truthy(held && relayed, result.stdout);
  t.true(Number(held![1]) > 0);
  t.is(relayed![1], held![1]);
  t.regex(result.stdout, /the recorder's journal, lines 0–\d+: held at the center, receipted by it/);
  const sealed = /(\d+) sealed items: (\d+) receipted by the station and gone from the device/.exec(
    result.stdout,
  );
  t.truthy(sealed, result.stdout);
  t.is(sealed![2], held![1], 'every item the station holds was receipted to the device');
  t.regex(result.stdout, /evidence at the station: OK — (\d+) item\(s\)/);
  t.regex(result.stdout, /evidence at the center: OK — (\d+) item\(s\)/);
  // The device kept no copy of a receipted item; the center's store holds each one, read-only.
  const receipts = journalEntries(state).filter((e) => e.kind === 'upload-receipt');
  t.is(receipts.length, Number(held![1]));
  const list = await runRecorder([
    'evidence',
    'list',
    '--config',
    `${state}/center-gateway/gateway.json`,
    '--json',
  ]);
  t.is(list.code, 0, list.stderr);
  t.is(list.stdout.trim().split('\n').length, Number(held![1]));
});
