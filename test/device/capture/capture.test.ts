// Real GStreamer: the capture child records small simulated video and audio into a temp spool.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CaptureSupervisor, type ClosedSegment } from '../../../device/capture/capture-supervisor.ts';
import { needPrograms } from '../../helpers/system.ts';
import { tempDir } from '../../helpers/temp.ts';
import {
  captureSettings,
  decodeErrors,
  probe,
  sleep,
  tsStreamTypes,
  videoPackets,
  waitForEvent,
} from './capture-helpers.ts';

const FRAME_MS = 100; // 10 fps
/** Hash of the decoded top 32 rows, where the watermark sits (the test pattern's corner has moving snow). */
const sha = (path: string) =>
  createHash('sha256')
    .update(
      spawnSync('ffmpeg', ['-v', 'error', '-i', path, '-vf', 'crop=iw:32:0:0', '-f', 'rawvideo', '-']).stdout,
    )
    .digest('hex');

test.serial(
  'segments demux cleanly, follow each other without gap or overlap, and a clean stop closes the last',
  async (t) => {
    needPrograms('ffprobe', 'ffmpeg', 'gst-launch-1.0');
    const spool = tempDir(t);
    const sup = new CaptureSupervisor({
      settings: captureSettings({}),
      spoolDir: spool,
      overlayText: 'FIRST TEXT',
      heartbeatMs: 500,
    });
    const segments: (ClosedSegment & { receivedAt: number })[] = [];
    sup.on('segment', (s: ClosedSegment) => segments.push({ ...s, receivedAt: Date.now() }));
    const restarts: unknown[] = [];
    sup.on('restart', (r) => restarts.push(r));
    t.teardown(() => sup.stop());

    const beforeStart = Date.now();
    const ready = await sup.start();
    const readyAt = Date.now();
    await waitForEvent(sup, 'segment', (s: ClosedSegment) => s.index === 1, 20_000);

    // Snapshots: the same text gives the same watermark band; new text changes it.
    const a1 = await sup.snapshot();
    const a2 = await sup.snapshot();
    sup.setOverlay('SECOND TEXT, CHANGED AT RUN TIME');
    await sleep(500);
    const b = await sup.snapshot();
    for (const path of [a1, a2, b]) {
      const p = probe(path);
      t.true(p.ok, p.stderr);
      t.is(p.streams[0]?.codec_name, 'mjpeg');
      t.true(path.startsWith(spool));
    }
    t.is(sha(a1), sha(a2), 'same text, same picture');
    t.not(sha(a1), sha(b), 'the overlay text set at run time is burned into the frames');

    await waitForEvent(sup, 'segment', (s: ClosedSegment) => s.index === 3, 20_000);
    const stopCalled = Date.now();
    await sup.stop();
    const stoppedAt = Date.now();
    t.is(sup.status, 'idle');
    t.deepEqual(restarts, []);

    t.true(segments.length >= 5, `${segments.length} segments`);
    t.deepEqual(
      segments.map((s) => s.index),
      segments.map((_, i) => i),
    );
    const last = segments.at(-1)!;
    t.false(last.torn, 'the open segment is closed cleanly by stop()');
    t.log(
      `stop() called ${stopCalled - last.endMs} ms after the last frame's end; resolved ${stoppedAt - stopCalled} ms later`,
    );
    t.true(
      last.endMs <= stoppedAt + FRAME_MS && last.endMs >= stopCalled - 500,
      'the last segment runs up to the stop',
    );

    for (const s of segments) {
      t.false(s.torn);
      t.true(s.hasVideo && s.hasAudio);
      const p = probe(s.path);
      t.true(p.ok, `${s.path}: ${p.stderr}`);
      t.is(p.stderr, '', `${s.path} demuxes without complaint`);
      t.is(decodeErrors(s.path), '', `${s.path} decodes without error`);
      const video = p.streams.find((x) => x.codec_type === 'video');
      t.is(video?.codec_name, 'h264');
      t.notRegex(video?.profile ?? '', /4:4:4/);
      t.is(p.streams.find((x) => x.codec_type === 'audio')?.codec_name, 'aac');
      t.is(s.bytes, readFileSync(s.path).length);
      // wall-clock end no later than when we heard of it (plus a frame): times are not in the future
      t.true(
        s.endMs <= s.receivedAt + FRAME_MS,
        `segment ${s.index} ends ${s.endMs - s.receivedAt} ms after it was reported`,
      );
    }
    // first frame after start() was called, and not later than a frame after the pipeline played
    const first = segments[0]!;
    t.true(
      first.startMs >= beforeStart - FRAME_MS && first.startMs <= readyAt + FRAME_MS,
      `first frame at ${first.startMs - beforeStart} ms`,
    );
    t.true(Math.abs(ready.baseWallMs - beforeStart) < 5000);
    // wall time of running time 0 is known to within half the play() call: well under one frame
    t.log(`base wall-clock time known to ±${ready.baseUncertaintyMs} ms`);
    t.true(ready.baseUncertaintyMs <= FRAME_MS / 2);

    // No gap, no overlap: in wall-clock times (exact, same running time) and in the media (one frame).
    const packets = segments.map((s) => videoPackets(s.path));
    for (let i = 1; i < segments.length; i++) {
      t.is(segments[i]!.startMs, segments[i - 1]!.endMs, `wall clock: ${i - 1} → ${i}`);
      const prev = packets[i - 1]!.at(-1)!;
      const next = packets[i]![0]!;
      const gap = next.pts - (prev.pts + prev.duration);
      t.true(
        Math.abs(gap) < FRAME_MS / 1000 / 2,
        `media: gap of ${gap.toFixed(4)} s between segments ${i - 1} and ${i}`,
      );
      // the media clock and the supervisor's wall-clock mapping agree to within a frame
      const mediaSpan = (next.pts - packets[0]![0]!.pts) * 1000;
      const wallSpan = segments[i]!.startMs - first.startMs;
      t.true(
        Math.abs(mediaSpan - wallSpan) <= FRAME_MS,
        `segment ${i}: media ${mediaSpan.toFixed(0)} ms, wall ${wallSpan} ms`,
      );
    }
    for (let i = 0; i < segments.length - 1; i++) {
      const s = segments[i]!;
      t.true(Math.abs(s.durationMs - 1000) <= FRAME_MS, `segment ${i} lasts ${s.durationMs} ms`);
    }
  },
);

test.serial(
  'pre-record: segment wall-clock times place a press exactly, so coverage of P seconds can be computed',
  async (t) => {
    needPrograms('ffprobe', 'gst-launch-1.0');
    const spool = tempDir(t);
    const S = 1;
    const P = 3;
    const sup = new CaptureSupervisor({
      settings: captureSettings({ segmentSeconds: S, audio: true }),
      spoolDir: spool,
    });
    const ring: ClosedSegment[] = [];
    sup.on('segment', (s: ClosedSegment) => ring.push(s));
    t.teardown(() => sup.stop());
    await sup.start();
    // standby: let the ring fill beyond P, then "press record"
    await waitForEvent(sup, 'segment', (s: ClosedSegment) => s.index === P + 1, 25_000);
    const press = Date.now();
    // the segment containing the press closes about S plus the muxer's look-ahead later
    await waitForEvent(sup, 'segment', (s: ClosedSegment) => s.endMs > press, 10_000);
    await sup.stop();

    const from = press - P * 1000;
    const covering = ring.filter((s) => s.endMs > from && s.startMs <= press);
    t.true(covering.length >= P, `${covering.length} segments cover the ${P} s before the press`);
    t.true(
      covering[0]!.startMs <= from,
      `first kept segment starts ${from - covering[0]!.startMs} ms before T-P`,
    );
    t.true(covering.at(-1)!.endMs >= press, 'the segment holding the press is included');
    for (let i = 1; i < covering.length; i++) t.is(covering[i]!.startMs, covering[i - 1]!.endMs);
    // what the media itself holds before the press, measured from the files
    const heldMs = covering.reduce((sum, s) => {
      const pk = videoPackets(s.path);
      return sum + (pk.at(-1)!.pts + pk.at(-1)!.duration - pk[0]!.pts) * 1000;
    }, 0);
    const spanMs = covering.at(-1)!.endMs - covering[0]!.startMs;
    t.true(
      Math.abs(heldMs - spanMs) <= FRAME_MS,
      `media holds ${heldMs.toFixed(0)} ms, timestamps say ${spanMs} ms`,
    );
    t.log(
      `press at T; kept from T-${press - covering[0]!.startMs} ms to T+${covering.at(-1)!.endMs - press} ms ` +
        `(${covering.length} segments of ${S} s; media ${heldMs.toFixed(0)} ms vs wall ${spanMs} ms)`,
    );
  },
);

test.serial('audio-only mode records AAC segments without video', async (t) => {
  needPrograms('ffprobe', 'gst-launch-1.0');
  const spool = tempDir(t);
  const sup = new CaptureSupervisor({
    settings: captureSettings({ audio: false }),
    spoolDir: spool,
    mode: 'audio',
  });
  const segments: ClosedSegment[] = [];
  sup.on('segment', (s: ClosedSegment) => segments.push(s));
  t.teardown(() => sup.stop());
  await sup.start();
  await waitForEvent(sup, 'segment', (s: ClosedSegment) => s.index === 1, 20_000);
  await t.throwsAsync(sup.snapshot(), { message: /audio-only/ });
  await sup.stop();
  t.true(segments.length >= 3);
  for (const s of segments) {
    t.true(s.hasAudio);
    t.false(s.hasVideo);
    // Every segment declares exactly one stream, ADTS AAC (0x0f), in its own PMT.
    t.deepEqual(tsStreamTypes(readFileSync(s.path)), [0x0f], s.path);
    const p = probe(s.path);
    t.true(p.ok, p.stderr);
    // ffprobe decodes what it can; it misnames a last fragment of a few packets (the stop can come
    // right after a cut), so its codec is asserted where there is something to analyse.
    if (s.durationMs >= 500)
      t.deepEqual(
        p.streams.map((x) => x.codec_name),
        ['aac'],
        `${s.path} (${s.durationMs} ms)`,
      );
  }
  for (let i = 1; i < segments.length; i++) t.is(segments[i]!.startMs, segments[i - 1]!.endMs);
});

test.serial('stop() right after start() ends cleanly, with no torn segment and no restart', async (t) => {
  needPrograms('ffprobe', 'gst-launch-1.0');
  const spool = tempDir(t);
  const sup = new CaptureSupervisor({ settings: captureSettings({ audio: false }), spoolDir: spool });
  const segments: ClosedSegment[] = [];
  const restarts: unknown[] = [];
  sup.on('segment', (s: ClosedSegment) => segments.push(s));
  sup.on('restart', (r) => restarts.push(r));
  void sup.start().catch(() => undefined);
  await sleep(50);
  await sup.stop();
  t.is(sup.status, 'idle');
  t.deepEqual(restarts, []);
  t.false(
    segments.some((s) => s.torn),
    'nothing torn',
  );
  for (const s of segments) t.true(probe(s.path).ok, JSON.stringify(s) + probe(s.path).stderr);
  // and it can start again
  await sup.start();
  await waitForEvent(sup, 'segment', () => true, 20_000);
  await sup.stop();
  t.true(segments.length >= 1);
});
