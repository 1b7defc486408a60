// The recorder runner in-process, with the simulated drivers a test can steer, and real capture.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCenterKeyPair } from '../../device/center-keys.ts';
import { loadPrivateKey } from '../../device/keys.ts';
import { buildSimProfile } from '../../device/profile-file.ts';
import { Recorder } from '../../device/recorder.ts';
import { decryptState, plaintextName } from '../../device/sealing/verify-state.ts';
import { SimBattery } from '../../hardware/battery-sim.ts';
import { SimGnss } from '../../hardware/gnss-sim.ts';
import { SimButtons, SimIndicators } from '../../hardware/gpio-sim.ts';
import { StatfsStorage } from '../../hardware/storage-statfs.ts';
import { journalEntries, sleep } from '../helpers/device-process.ts';
import { needPrograms } from '../helpers/system.ts';
import { tempDir } from '../helpers/temp.ts';

async function start(t: ExecutionContext, battery = new SimBattery()) {
  needPrograms('gst-launch-1.0', 'ffprobe');
  const dir = tempDir(t);
  const center = createCenterKeyPair(join(dir, 'center'));
  const profile = buildSimProfile({
    unit: 'HN',
    device: 'HN-CS-0009',
    officers: ['HN-0001'],
    centerPublicKeyPem: readFileSync(center.publicKey, 'utf8'),
    stateDir: join(dir, 'state'),
    segmentSeconds: 1,
    prerecordSeconds: 2,
    postrecordSeconds: 1,
    width: 320,
    height: 240,
    fps: 10,
  });
  const hardware = {
    buttons: new SimButtons(),
    indicators: new SimIndicators(),
    gnss: new SimGnss(),
    battery,
    storage: new StatfsStorage(profile.storage.evidenceDir),
  };
  const recorder = await Recorder.start({
    profile,
    stateDir: join(dir, 'state'),
    hardware,
    storageCheckMs: 200,
  });
  t.teardown(() => recorder.stop());
  return { dir, recorder, hardware, state: join(dir, 'state'), centerKey: center.privateKey };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('a GPIO press reaches the state machine; the low-battery alarm sounds while 5 minutes remain', async (t) => {
  // 10 Wh at 2.5 W recording: 1 % is 2.4 minutes, so 3 % leaves 7 minutes and 2 % leaves 4.8.
  const battery = new SimBattery({ initialPercent: 3 });
  const { recorder, hardware, state } = await start(t, battery);
  hardware.buttons.press('record');
  await until(() => recorder.status().state === 'recording', 'recording');
  t.false(recorder.status().batteryAlarm, 'about 7 minutes left: no alarm yet');
  battery.setCapacity(2);
  await until(() => recorder.status().batteryAlarm, 'the alarm');
  // The flag is set before the serialised journal append lands: wait for the entry too.
  await until(() => journalEntries(state).some((e) => e.kind === 'battery-low'), 'the battery-low entry');
  const low = journalEntries(state).find((e) => e.kind === 'battery-low')!;
  t.true(low.body.minutesLeft >= 0 && low.body.minutesLeft <= 5, `${low.body.minutesLeft} minutes left`);
  t.deepEqual(hardware.indicators.state('buzzer'), { pulseMs: 400, times: 3 });
  battery.setExternalPower(true);
  await until(() => !recorder.status().batteryAlarm, 'the alarm to clear on external power');
  hardware.buttons.press('record', { long: true });
  await until(() => recorder.status().state === 'standby', 'standby');
});

test('audio-only: the camera stops for the event, its segments hold audio and no video, and video resumes after', async (t) => {
  const { recorder, hardware, state, centerKey } = await start(t);
  await sleep(2500);
  hardware.buttons.press('audio');
  await until(() => recorder.status().state === 'recording', 'recording');
  t.true(recorder.status().audioOnly);
  await sleep(3500);
  hardware.buttons.press('record', { double: true });
  await until(() => recorder.status().state === 'standby', 'standby', 30_000);
  await until(
    () => journalEntries(state).filter((e) => e.kind === 'capture-mode').length === 2,
    'video again',
  );
  await recorder.stop();

  const entries = journalEntries(state);
  const event = entries.find((e) => e.kind === 'record-start')!.body.event as string;
  // The audio-only pipeline run: its segment files carry its run id.
  const audioRun = entries.find((e) => e.kind === 'capture-mode' && e.body.mode === 'audio')!.body
    .runId as string;
  const out = join(tempDir(t), 'plain');
  await decryptState(state, loadPrivateKey(centerKey), out);
  // The distinct stream types in a file (ffprobe lists a stream once per program it belongs to).
  const streams = (file: string) =>
    [
      ...new Set(
        execFileSync(
          'ffprobe',
          ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'csv=p=0', file],
          {
            encoding: 'utf8',
          },
        )
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean),
      ),
    ]
      .sort()
      .join(',');
  const segments = entries
    .map((e, i) => ({ ...e, i }))
    .filter((e) => e.kind === 'segment' && e.body.event === event);
  const afterSwitch = segments.filter((s) => String(s.body.spool).includes(audioRun));
  t.true(afterSwitch.length >= 2, `${afterSwitch.length} audio-only segments`);
  for (const s of afterSwitch) {
    const file = plaintextName(s.body.evidence.file);
    t.is(streams(join(out, file)), 'audio', s.body.evidence.file);
  }
});

test('issue 6: a mark during an event marks all its queued segments, also those sealed before the press', async (t) => {
  const { recorder, hardware, state } = await start(t);
  await sleep(2500); // pre-record segments in the ring
  hardware.buttons.press('record');
  await until(() => recorder.status().state === 'recording', 'recording');
  const event = recorder.status().event!;
  await until(() => recorder.status().segments.sealed >= 3, 'segments sealed before the mark');
  const before = recorder.status().pendingUploads.count;
  t.is(recorder.status().pendingUploads.marked, 0);
  hardware.buttons.press('mark');
  await until(() => recorder.status().marks === 1, 'the mark');
  await until(() => recorder.status().pendingUploads.count >= before + 2, 'segments sealed after the mark');
  hardware.buttons.press('record', { double: true });
  await until(() => recorder.status().state === 'standby', 'standby', 30_000);
  await recorder.stop();

  const file = JSON.parse(readFileSync(join(state, 'state.json'), 'utf8')) as {
    uploadQueue: { file: string; event: string | null; seq: number }[];
    markedEvents: string[];
  };
  t.deepEqual(file.markedEvents, [event]);
  const ofEvent = file.uploadQueue.filter((i) => i.event === event);
  t.is(ofEvent.length, file.uploadQueue.length, 'every queued item names its event');
  const markSeq = journalEntries(state).find((e) => e.kind === 'mark')!.seq;
  t.true(ofEvent.filter((i) => i.seq < markSeq).length >= 3, 'sealed before the mark');
  t.true(ofEvent.filter((i) => i.seq > markSeq).length >= 2, 'sealed after the mark');
  t.is(recorder.status().pendingUploads.marked, ofEvent.length);
});
