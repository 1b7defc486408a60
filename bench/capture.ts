/**
 * Capture benchmark (issue 3): record simulated 1080p30 video + AAC audio for N seconds and measure
 * CPU (% of one core) and RSS of the device process (the supervisor and the watermark ticker, this
 * process) and of the capture child, separately, from /proc/PID/stat and /proc/PID/status.
 *
 *   node --import=tsx bench/capture.ts --seconds 60
 *   npm run bench -- --only capture --seconds 20
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CaptureSupervisor, type ClosedSegment } from '../device/capture/capture-supervisor.ts';
import { WatermarkTicker } from '../device/capture/watermark-ticker.ts';
import { DEFAULT_WATERMARK_TEMPLATE } from '../device/capture/watermark.ts';
import type { CaptureSettings } from '../protocol/schemas/profile.ts';
import type { BenchRow } from './run.ts';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime in clock ticks (fields 14 and 15 of /proc/PID/stat). */
function cpuTicks(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssMB(pid: number | 'self'): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function videoFrames(path: string): number {
  const out = execFileSync(
    'ffprobe',
    [
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-count_packets',
      '-show_entries',
      'stream=nb_read_packets',
      '-of',
      'csv=p=0',
      path,
    ],
    { encoding: 'utf8' },
  );
  return Number(out.trim().split('\n')[0]) || 0;
}

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : Number.NaN;
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

export async function bench(args: string[]): Promise<BenchRow[]> {
  const seconds = flag(args, '--seconds', 60);
  const settings: CaptureSettings = {
    source: 'sim',
    videoDevice: '/dev/video0',
    audioDevice: 'default',
    width: 1920,
    height: 1080,
    fps: 30,
    bitrateKbps: 4000,
    encoder: 'x264enc',
    audio: true,
    segmentSeconds: 10,
    prerecordSeconds: 30,
    postrecordSeconds: 10,
    maxEventMinutes: 120,
  };
  const spool = mkdtempSync(join(tmpdir(), 'bench-capture-'));
  const sup = new CaptureSupervisor({ settings, spoolDir: spool });
  const segments: ClosedSegment[] = [];
  sup.on('segment', (s: ClosedSegment) => segments.push(s));
  const ticker = new WatermarkTicker({
    setText: (text) => sup.setOverlay(text),
    template: DEFAULT_WATERMARK_TEMPLATE,
    context: () => ({
      timeZone: 'Asia/Shanghai',
      device: 'HN-CS-0001',
      officer: '110123',
      fix: { lat: 28.22783, lon: 112.93885 },
      clockTrusted: true,
    }),
  });
  const loadBefore = loadavg();
  try {
    ticker.start();
    await sup.start();
    // warm-up: the encoder's first seconds are not the steady state
    await new Promise((r) => setTimeout(r, 3000));
    const child = sup.childPid!;
    const t0 = performance.now();
    const self0 = cpuTicks('self');
    const child0 = cpuTicks(child);
    const selfRss: number[] = [];
    const childRss: number[] = [];
    const until = t0 + seconds * 1000;
    while (performance.now() < until) {
      await new Promise((r) => setTimeout(r, 1000));
      selfRss.push(rssMB('self'));
      childRss.push(rssMB(child));
    }
    const elapsed = (performance.now() - t0) / 1000;
    const selfCpu = ((cpuTicks('self') - self0) / CLK_TCK / elapsed) * 100;
    const childCpu = ((cpuTicks(child) - child0) / CLK_TCK / elapsed) * 100;
    const loadAfter = loadavg();
    await sup.stop();
    ticker.stop();
    const max = (xs: number[]) => Math.max(...xs).toFixed(0);
    const load = `load avg ${loadBefore[0]!.toFixed(2)} → ${loadAfter[0]!.toFixed(2)} on ${cpus().length} cores`;
    const bytes = segments.reduce((n, s) => n + s.bytes, 0);
    // Did the encoder keep up? Frames in the files against fps × recorded time.
    const mediaMs = segments.reduce((n, s) => n + s.durationMs, 0);
    const frames = segments.reduce((n, s) => n + videoFrames(s.path), 0);
    const expected = Math.round((mediaMs / 1000) * settings.fps);
    return [
      {
        what: `capture 1080p30 x264 + AAC, ${seconds} s: device process (supervisor + watermark ticker)`,
        figure: `${selfCpu.toFixed(1)} % of one core, ${max(selfRss)} MB RSS`,
        baseline: 'goal < 5 %, < 100 MB',
        note: load,
      },
      {
        what: `capture 1080p30 x264 + AAC, ${seconds} s: capture child (GStreamer)`,
        figure: `${childCpu.toFixed(1)} % of one core, ${max(childRss)} MB RSS`,
        note: `${segments.length} segments, ${(bytes / 1e6).toFixed(1)} MB, ${frames} of ${expected} frames; ${load}`,
      },
    ];
  } finally {
    ticker.stop();
    await sup.stop();
    rmSync(spool, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const row of await bench(process.argv.slice(2))) console.log(row);
}
