// Real GStreamer: the capture child is killed, stopped dead, or cannot open its camera.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  CaptureSupervisor,
  type CaptureRestart,
  type ClosedSegment,
} from '../../../device/capture/capture-supervisor.ts';
import { isRecorderError, type RecorderError } from '../../../protocol/errors.ts';
import type { AacEncoder } from '../../../device/capture/pipeline.ts';
import { needPrograms } from '../../helpers/system.ts';
import { reapWithWorker } from '../../helpers/child-reaper.ts';
import { tempDir } from '../../helpers/temp.ts';
import {
  captureSettings,
  decodeErrors,
  probe,
  sleep,
  videoPackets,
  waitForEvent,
} from './capture-helpers.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test.serial(
  'power cut: SIGKILL mid-segment leaves a torn segment that demuxes up to the cut; capture restarts',
  async (t) => {
    needPrograms('ffprobe', 'ffmpeg', 'gst-launch-1.0');
    const spool = tempDir(t);
    const sup = new CaptureSupervisor({
      settings: captureSettings({ segmentSeconds: 4 }),
      spoolDir: spool,
      heartbeatMs: 300,
      restartDelaysMs: [300],
    });
    const segments: ClosedSegment[] = [];
    sup.on('segment', (s: ClosedSegment) => segments.push(s));
    t.teardown(() => sup.stop());
    const first = await sup.start();

    const closed = await waitForEvent<ClosedSegment>(sup, 'segment', () => true, 20_000);
    // The second segment opened at closed.endMs; let it run well into its length, then cut power.
    while (Date.now() < closed.endMs + 2500) await sleep(50);
    const pid = sup.childPid!;
    const restart = waitForEvent<CaptureRestart>(sup, 'restart');
    const tornEvent = waitForEvent<ClosedSegment>(sup, 'segment', (s) => s.torn);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    const torn = await tornEvent;
    const r = await restart;
    const writtenMs = killedAt - torn.startMs;

    t.is(r.reason, 'crashed');
    t.is(r.signal, 'SIGKILL');
    t.is(r.attempt, 1);
    t.is(torn.index, closed.index + 1);
    t.is(torn.startMs, closed.endMs, 'the torn segment follows the last closed one');
    t.true(existsSync(torn.path), 'the torn segment stays in the spool for recovery');
    t.true(torn.bytes > 0);
    const p = probe(torn.path);
    t.true(p.ok, p.stderr);
    const packets = videoPackets(torn.path);
    const heldMs = (packets.at(-1)!.pts + packets.at(-1)!.duration - packets[0]!.pts) * 1000;
    t.log(`written for ${writtenMs} ms before SIGKILL; the torn file holds ${heldMs.toFixed(0)} ms of video`);
    t.true(heldMs >= writtenMs - 1000, `holds ${heldMs.toFixed(0)} ms of ${writtenMs} ms written`);
    // every frame it holds decodes (a cut inside the last TS packet may be reported, nothing else)
    const errors = decodeErrors(torn.path)
      .split('\n')
      .filter(
        (l) => l && !/Packet corrupt|invalid data found|corrupt decoded frame|error while decoding/i.test(l),
      );
    t.deepEqual(errors, []);

    // capture resumes in a new run, with new file names: nothing is overwritten
    const again = await waitForEvent<{ runId: string; pid: number }>(sup, 'ready');
    t.not(again.runId, first.runId);
    t.not(again.pid, pid);
    const next = await waitForEvent<ClosedSegment>(sup, 'segment', (s) => !s.torn, 20_000);
    t.is(next.runId, again.runId);
    t.false(segments.slice(0, -1).some((s) => s.path === next.path));
    t.true(probe(next.path).ok);
    await sup.stop();
  },
);

test.serial('a hung pipeline is killed after the watchdog timeout and restarted', async (t) => {
  needPrograms('gst-launch-1.0');
  const spool = tempDir(t);
  const sup = new CaptureSupervisor({
    settings: captureSettings({ segmentSeconds: 1, audio: false }),
    spoolDir: spool,
    heartbeatMs: 200,
    hungTimeoutMs: 2000,
    restartDelaysMs: [200],
  });
  const segments: ClosedSegment[] = [];
  sup.on('segment', (s: ClosedSegment) => segments.push(s));
  t.teardown(() => sup.stop());
  await sup.start();
  await waitForEvent(sup, 'segment', () => true, 20_000);
  const pid = sup.childPid!;
  // SIGSTOP freezes the whole child: no heartbeat, no growth, exactly what a deadlock looks like.
  const stoppedAt = Date.now();
  process.kill(pid, 'SIGSTOP');
  const restart = await waitForEvent<CaptureRestart>(sup, 'restart', () => true, 10_000);
  const detectedMs = Date.now() - stoppedAt;
  t.is(restart.reason, 'hung');
  t.true(detectedMs >= 1800 && detectedMs < 6000, `detected after ${detectedMs} ms`);
  t.false(alive(pid), 'the hung child was killed');
  const torn = segments.filter((s) => s.torn);
  t.is(torn.length, 1, 'the segment open at the hang is reported torn');
  t.true(existsSync(torn[0]!.path));
  const ready = await waitForEvent<{ pid: number }>(sup, 'ready', () => true, 20_000);
  t.not(ready.pid, pid);
  const seg = await waitForEvent<ClosedSegment>(sup, 'segment', (s) => !s.torn, 20_000);
  t.true(seg.hasVideo);
  await sup.stop();
  t.is(sup.status, 'idle');
});

test.serial(
  'a camera that cannot be opened: restarts with backoff, then fault with a coded error',
  async (t) => {
    needPrograms('gst-launch-1.0');
    const spool = tempDir(t);
    const sup = new CaptureSupervisor({
      settings: captureSettings({ source: 'v4l2', videoDevice: '/dev/no-such-camera', audio: false }),
      spoolDir: spool,
      restartDelaysMs: [100, 200],
      maxRestarts: 2,
    });
    const restarts: CaptureRestart[] = [];
    sup.on('restart', (r: CaptureRestart) => restarts.push(r));
    const error = await t.throwsAsync<RecorderError>(sup.start());
    t.true(isRecorderError(error, 'CAPTURE_FAULT'), String(error));
    t.deepEqual(
      restarts.map((r) => [r.reason, r.attempt, r.delayMs]),
      [
        ['pipeline-error', 1, 100],
        ['pipeline-error', 2, 200],
      ],
    );
    t.regex(restarts[0]!.detail, /no-such-camera|Cannot identify|not exist/i);
    t.is(sup.status, 'fault');
    await sup.stop();
  },
);

test.serial(
  'the device process dies (SIGKILL): the orphaned capture child closes its open segment and exits',
  async (t) => {
    needPrograms('ffprobe', 'gst-launch-1.0');
    const spool = tempDir(t);
    const device = reapWithWorker(
      spawn(
        process.execPath,
        ['--import=tsx', fileURLToPath(new URL('fixtures/supervised-device.ts', import.meta.url)), spool],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      ),
    );
    t.teardown(() => device.kill('SIGKILL'));
    const lines = createInterface({ input: device.stdout! });
    let childPid = 0;
    for await (const line of lines) {
      const msg = JSON.parse(line) as { child?: number; segment?: ClosedSegment };
      if (msg.child) childPid = msg.child;
      if (msg.segment) break; // one segment closed: the second is open now
    }
    t.true(childPid > 0);
    await sleep(1500);
    device.kill('SIGKILL');
    const deadline = Date.now() + 15_000;
    while (alive(childPid) && Date.now() < deadline) await sleep(100);
    t.false(alive(childPid), 'the capture child does not outlive the device process');
    const files = readdirSync(spool)
      .filter((f) => f.endsWith('.ts'))
      .sort();
    t.is(files.length, 2);
    // the segment that was open is complete: it demuxes cleanly and decodes without error
    const last = join(spool, files.at(-1)!);
    const p = probe(last);
    t.true(p.ok, p.stderr);
    t.is(p.stderr, '');
    t.is(decodeErrors(last), '');
    t.true(
      videoPackets(last).length >= 10,
      'it holds the second and a half recorded after the first segment',
    );
  },
);

test.serial(
  'a pipeline that cannot be built (missing element) faults at once, naming the element',
  async (t) => {
    const spool = tempDir(t);
    const sup = new CaptureSupervisor({
      settings: captureSettings({ audio: true }),
      spoolDir: spool,
      // an AAC encoder no GStreamer install has: gst_parse_launch refuses the description
      pipeline: { aacEncoder: 'no_such_aacenc' as AacEncoder },
    });
    const restarts: CaptureRestart[] = [];
    sup.on('restart', (r: CaptureRestart) => restarts.push(r));
    const error = await t.throwsAsync<RecorderError>(sup.start());
    t.true(isRecorderError(error, 'CAPTURE_FAULT'));
    t.regex(error.message, /no_such_aacenc/);
    t.deepEqual(restarts, [], 'no pointless restarts');
  },
);
