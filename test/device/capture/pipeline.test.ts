import test from 'ava';
import { createRequire } from 'node:module';
import { isRecorderError } from '../../../protocol/errors.ts';
import {
  buildCaptureLaunch,
  encoderChain,
  parseSegmentName,
  segmentLocationPattern,
} from '../../../device/capture/pipeline.ts';
import { captureSettings } from './capture-helpers.ts';

test('sim video + audio: I420 caps, watermark before the encoder, MPEG-TS segments, no max-files', (t) => {
  const s = captureSettings({ width: 640, height: 480, fps: 15, segmentSeconds: 4, bitrateKbps: 800 });
  const launch = buildCaptureLaunch(s, { spoolDir: '/run/spool/', runId: 'r1' });
  t.true(
    launch.includes(
      'videotestsrc is-live=true ! video/x-raw,format=I420,width=640,height=480,framerate=15/1',
    ),
  );
  t.true(launch.includes('audiotestsrc is-live=true'));
  t.true(launch.indexOf('textoverlay name=watermark') < launch.indexOf('x264enc'));
  t.true(launch.includes('x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=800'));
  t.true(launch.includes('muxer=mpegtsmux max-size-time=4000000000'));
  t.true(launch.includes('location="/run/spool/seg-r1-%06d.ts"'));
  t.true(launch.includes('voaacenc bitrate=64000'));
  t.false(launch.includes('max-files'), 'evidence is never deleted by the pipeline');
});

test('no audio when the profile says so; audio-only mode has no video', (t) => {
  const quiet = buildCaptureLaunch(captureSettings({ audio: false }), { spoolDir: '/s', runId: 'r' });
  t.false(quiet.includes('audiotestsrc'));
  const audio = buildCaptureLaunch(captureSettings({ audio: false }), {
    spoolDir: '/s',
    runId: 'r',
    mode: 'audio',
  });
  t.true(audio.includes('audiotestsrc'));
  t.false(audio.includes('videotestsrc'));
  t.false(audio.includes('textoverlay'));
});

test('v4l2 source uses the profile devices', (t) => {
  const launch = buildCaptureLaunch(
    captureSettings({ source: 'v4l2', videoDevice: '/dev/video2', audioDevice: 'hw:1,0' }),
    { spoolDir: '/s', runId: 'r', aacEncoder: 'avenc_aac' },
  );
  t.true(launch.includes('v4l2src device="/dev/video2"'));
  t.true(launch.includes('alsasrc device="hw:1,0"'));
  t.true(launch.includes('avenc_aac bitrate=64000'));
});

test('each supported encoder gets its own properties; unknown encoders are refused with a code', (t) => {
  t.regex(encoderChain(captureSettings({ encoder: 'v4l2h264enc', fps: 25 }), 25), /h264_i_frame_period=25/);
  t.regex(
    encoderChain(captureSettings({ encoder: 'mpph264enc', bitrateKbps: 3000 }), 30),
    /mpph264enc gop=30 bps=3000000/,
  );
  const error = t.throws(() =>
    buildCaptureLaunch(captureSettings({ encoder: 'nvh264enc' }), { spoolDir: '/s', runId: 'r' }),
  );
  t.true(isRecorderError(error, 'CAPTURE_ENCODER_UNSUPPORTED'));
  t.regex(error.message, /nvh264enc/);
});

test('the launch string parses and a spool path with spaces and quotes survives quoting', (t) => {
  const require = createRequire(import.meta.url);
  const { Pipeline } = require('gstreamer-superficial') as {
    Pipeline: new (launch: string) => { findChild(name: string): Record<string, unknown> | undefined };
  };
  const spool = '/tmp/a "b" c';
  const launch = buildCaptureLaunch(captureSettings({}), { spoolDir: spool, runId: 'r' });
  // Parsing builds the elements without playing them.
  const pipeline = new Pipeline(launch);
  t.is(pipeline.findChild('segments')?.location, `${spool}/seg-r-%06d.ts`);
  t.is(pipeline.findChild('watermark')?.text, '');
  t.is(pipeline.findChild('snapvalve')?.drop, true);
});

test('segment names round-trip', (t) => {
  t.is(segmentLocationPattern('/spool', '17r0'), '/spool/seg-17r0-%06d.ts');
  t.deepEqual(parseSegmentName('seg-17r0-000012.ts'), { runId: '17r0', index: 12 });
  t.is(parseSegmentName('photo-17r0-0001.jpg'), undefined);
});
