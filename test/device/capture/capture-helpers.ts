/** Shared by the capture tests: small settings and ffprobe readers. */
import { spawnSync } from 'node:child_process';
import type { CaptureSettings } from '../../../protocol/schemas/profile.ts';

/** 320x240@10 fps, 1 s segments, x264 + AAC: small enough for a shared 2-core machine. */
export function captureSettings(overrides: Partial<CaptureSettings>): CaptureSettings {
  return {
    source: 'sim',
    videoDevice: '/dev/video0',
    audioDevice: 'default',
    width: 320,
    height: 240,
    fps: 10,
    bitrateKbps: 400,
    encoder: 'x264enc',
    audio: true,
    segmentSeconds: 1,
    prerecordSeconds: 0,
    postrecordSeconds: 0,
    maxEventMinutes: 10,
    ...overrides,
  };
}

export interface ProbeStream {
  codec_type: string;
  codec_name: string;
  profile?: string;
  start_time?: string;
  duration?: string;
}

export interface Probe {
  ok: boolean;
  stderr: string;
  streams: ProbeStream[];
  format: { duration?: string };
}

/** ffprobe with -v error: any demux/decode complaint shows in stderr. */
export function probe(path: string): Probe {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', path], {
    encoding: 'utf8',
  });
  const parsed =
    r.status === 0
      ? (JSON.parse(r.stdout) as { streams?: ProbeStream[]; format?: { duration?: string } })
      : {};
  return { ok: r.status === 0, stderr: r.stderr, streams: parsed.streams ?? [], format: parsed.format ?? {} };
}

/** Decodes every frame; returns ffmpeg's error output (empty when the file decodes cleanly). */
export function decodeErrors(path: string): string {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-nostdin', '-i', path, '-f', 'null', '-'], {
    encoding: 'utf8',
  });
  return r.status === 0 ? r.stderr.trim() : `exit ${r.status}: ${r.stderr}`;
}

/** Video packet PTS (seconds) of a file, in presentation order, with each packet's duration. */
export function videoPackets(path: string): { pts: number; duration: number }[] {
  const r = spawnSync(
    'ffprobe',
    [
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-show_entries',
      'packet=pts_time,duration_time',
      '-of',
      'csv=p=0',
      path,
    ],
    { encoding: 'utf8' },
  );
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [pts, duration] = line.split(',');
      return { pts: Number(pts), duration: Number(duration) };
    })
    .filter((p) => Number.isFinite(p.pts))
    .sort((a, b) => a.pts - b.pts);
}

/** Resolves with the first `event` whose argument satisfies `predicate`; rejects after timeoutMs. */
export function waitForEvent<T>(
  emitter: NodeJS.EventEmitter,
  event: string,
  predicate: (value: T) => boolean = () => true,
  timeoutMs = 15_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, listener);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (value: T) => {
      if (!predicate(value)) return;
      clearTimeout(timer);
      emitter.off(event, listener);
      resolve(value);
    };
    emitter.on(event, listener);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The elementary stream types an MPEG-TS file declares in its first PMT (ISO/IEC 13818-1
 * §2.4.4.8: 0x0f ADTS AAC, 0x1b H.264, 0x03/0x04 MPEG audio), read from the file itself. ffprobe
 * guesses MPEG audio (`mp2`) for a fragment of a few packets even when its PMT says AAC, so a test
 * of what a tiny last segment declares needs the table, not the guess.
 */
export function tsStreamTypes(bytes: Buffer): number[] | null {
  let pmtPid: number | null = null;
  for (let at = 0; at + 188 <= bytes.length; at += 188) {
    if (bytes[at] !== 0x47) return null;
    const pid = ((bytes[at + 1]! & 0x1f) << 8) | bytes[at + 2]!;
    const unitStart = (bytes[at + 1]! & 0x40) !== 0;
    if (!unitStart || (pid !== 0 && pid !== pmtPid)) continue;
    let p = at + 4;
    if ((bytes[at + 3]! & 0x20) !== 0) p += 1 + bytes[p]!; // adaptation field
    p += 1 + bytes[p]!; // pointer field
    const sectionLength = ((bytes[p + 1]! & 0x0f) << 8) | bytes[p + 2]!;
    const end = p + 3 + sectionLength - 4; // without the CRC
    if (pid === 0) {
      // PAT: the first program's PMT pid (program number 0 is the network PID).
      for (let q = p + 8; q + 4 <= end; q += 4) {
        if (((bytes[q]! << 8) | bytes[q + 1]!) !== 0) {
          pmtPid = ((bytes[q + 2]! & 0x1f) << 8) | bytes[q + 3]!;
          break;
        }
      }
      continue;
    }
    const programInfoLength = ((bytes[p + 10]! & 0x0f) << 8) | bytes[p + 11]!;
    const types: number[] = [];
    for (let q = p + 12 + programInfoLength; q + 5 <= end;) {
      types.push(bytes[q]!);
      q += 5 + (((bytes[q + 3]! & 0x0f) << 8) | bytes[q + 4]!);
    }
    return types;
  }
  return null;
}
