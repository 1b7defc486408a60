/** Small real media files for sealing and verification tests, made with GStreamer. */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { needPrograms } from './system.ts';

/** An MPEG-TS clip of `frames` frames of 160×120 H.264 at 10 fps. */
export function makeTsClip(dir: string, name = 'clip.ts', frames = 20): string {
  needPrograms('gst-launch-1.0');
  const path = join(dir, name);
  execFileSync(
    'gst-launch-1.0',
    [
      '-q',
      'videotestsrc',
      `num-buffers=${frames}`,
      '!',
      'video/x-raw,width=160,height=120,framerate=10/1,format=I420',
      '!',
      'x264enc',
      'speed-preset=ultrafast',
      '!',
      'mpegtsmux',
      '!',
      'filesink',
      `location=${path}`,
    ],
    { stdio: 'pipe' },
  );
  return path;
}

/** One 160×120 JPEG snapshot. */
export function makeJpeg(dir: string, name = 'photo.jpg'): string {
  needPrograms('gst-launch-1.0');
  const path = join(dir, name);
  execFileSync(
    'gst-launch-1.0',
    [
      '-q',
      'videotestsrc',
      'num-buffers=1',
      '!',
      'video/x-raw,width=160,height=120',
      '!',
      'jpegenc',
      '!',
      'filesink',
      `location=${path}`,
    ],
    { stdio: 'pipe' },
  );
  return path;
}

let centerKeys: { publicKey: KeyObject; privateKey: KeyObject } | null = null;
/** One RSA-3072 evidence-center key pair per test process (generating one takes a while). */
export function testCenterKeys(): { publicKey: KeyObject; privateKey: KeyObject } {
  centerKeys ??= generateKeyPairSync('rsa', { modulusLength: 3072 });
  return centerKeys;
}
