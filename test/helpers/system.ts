/**
 * Tests that need a system program call `needPrograms` first: a missing program fails the test
 * with the Debian package to install, never skips it.
 */
import { spawnSync } from 'node:child_process';

/** program → Debian package that provides it */
export const PROGRAM_PACKAGES: Record<string, string> = {
  jq: 'jq',
  openssl: 'openssl',
  sha256sum: 'coreutils',
  'gst-launch-1.0': 'gstreamer1.0-tools',
  'gst-inspect-1.0': 'gstreamer1.0-tools',
  ffprobe: 'ffmpeg',
  ffmpeg: 'ffmpeg',
  socat: 'socat',
  mosquitto: 'mosquitto',
  mosquitto_sub: 'mosquitto-clients',
  mosquitto_pub: 'mosquitto-clients',
  gpiomon: 'gpiod',
  gpioset: 'gpiod',
  strace: 'strace',
};

export function missingPrograms(programs: string[]): string[] {
  return programs.filter((p) => spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0);
}

/** Throws an error naming the Debian packages to install when any program is missing. */
export function needPrograms(...programs: string[]): void {
  const missing = missingPrograms(programs);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((p) => PROGRAM_PACKAGES[p] ?? p))];
  throw new Error(
    `this test needs ${missing.join(', ')}; install it with: apt-get install -y ${packages.join(' ')} ` +
      '(npm test does this itself when run as root)',
  );
}
