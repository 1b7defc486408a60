/**
 * Runs the capture child (capture-child.ts) from the device process: starts it, turns its IPC
 * reports into `segment` events with wall-clock times, restarts it with backoff after a crash, kills
 * and restarts it when it hangs, and reports `fault` when restarts keep failing (DESIGN.md "The
 * device": fault on pipeline error). Never deletes a file: evidence is never auto-deleted, and a
 * segment torn by a crash stays in the spool to be sealed as recovered.
 *
 * Events:
 *   'ready'   CaptureReady       a pipeline run is playing
 *   'segment' ClosedSegment      a segment is complete (fsync'd), or torn by a crash (`torn: true`)
 *   'empty'   EmptySegment       a segment file with no data (stop or crash before its first frame)
 *   'restart' CaptureRestart     the child died or hung and will be started again after `delayMs`
 *   'fault'   RecorderError      CAPTURE_FAULT: restarts keep failing; capture has stopped
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaptureSettings } from '../../protocol/schemas/profile.ts';
import { RecorderError } from '../../protocol/errors.ts';
import type { CaptureChildConfig, ChildToParent, ParentToChild } from './capture-protocol.ts';
import { buildCaptureLaunch, parseSegmentName, type CaptureMode, type PipelineOptions } from './pipeline.ts';

export interface ClosedSegment {
  /** absolute path of the MPEG-TS file in the spool */
  path: string;
  /** sequence number over this supervisor's life, across restarts, from 0 */
  index: number;
  /** the pipeline run that wrote it (part of the file name) */
  runId: string;
  /** wall-clock epoch ms of the first frame (integer) */
  startMs: number;
  /** wall-clock epoch ms of the end of the last frame; for a torn segment, the last time it was seen growing */
  endMs: number;
  durationMs: number;
  /** pipeline running time of the start and end, ns as decimal strings */
  startRunningTimeNs: string;
  endRunningTimeNs: string;
  hasAudio: boolean;
  hasVideo: boolean;
  bytes: number;
  /** cut off by a crash, a kill or a hang: demuxes up to the cut, times are estimates */
  torn: boolean;
}

/** A segment file that holds nothing (EOS or a crash before its first frame); left in place. */
export interface EmptySegment {
  path: string;
}

export interface CaptureReady {
  runId: string;
  pid: number;
  /** wall-clock epoch ms of running time 0 of this run */
  baseWallMs: number;
  /**
   * ± bound of baseWallMs, ms: GStreamer picks base_time inside play() of a live pipeline, so it
   * lies within the call; every frame's wall-clock time is baseWallMs + its running time, exact
   * up to this bound.
   */
  baseUncertaintyMs: number;
}

export interface CaptureRestart {
  reason: 'crashed' | 'hung' | 'start-timeout' | 'pipeline-error';
  /** consecutive restarts without a segment closing in between, from 1 */
  attempt: number;
  delayMs: number;
  code: number | null;
  signal: string | null;
  /** the child's last error message or stderr lines */
  detail: string;
}

/** How the child process is started; tests and boards override these. */
export interface CaptureSpawnOptions {
  /** default process.execPath */
  execPath?: string;
  /** default ['--import=tsx'] (the child is TypeScript) */
  execArgv?: string[];
  /** default process.env; UV_THREADPOOL_SIZE is always raised to at least 8 */
  env?: NodeJS.ProcessEnv;
  /** default capture-child.ts next to this file */
  childModule?: string;
}

export interface CaptureSupervisorOptions {
  settings: CaptureSettings;
  /** the RAM spool directory; created if missing */
  spoolDir: string;
  /** default 'av' (video, plus audio when settings.audio); 'audio' for the audio-only button */
  mode?: CaptureMode;
  /** extra pipeline options (AAC encoder, key frame interval, ...) */
  pipeline?: Omit<PipelineOptions, 'spoolDir' | 'runId' | 'mode'>;
  /** wall clock, epoch ms; default Date.now. Segment times are this clock at running time 0 plus running time. */
  now?: () => number;
  /** monotonic clock in ns, the clock GStreamer's system clock uses; default process.hrtime.bigint */
  monotonicNs?: () => bigint;
  /** initial watermark text; default '' */
  overlayText?: string;
  /** child heartbeat period; default 1000 ms */
  heartbeatMs?: number;
  /** the child must be playing within this; default 20000 ms */
  startTimeoutMs?: number;
  /** no segment growth and no segment event for this long = hung; default max(10 s, 2 × segment + 5 s) */
  hungTimeoutMs?: number;
  /** after stop(), the child must have finished within this or is killed; default 10 s + one segment */
  stopTimeoutMs?: number;
  /** waits before restart attempt 1, 2, ...; the last repeats; default [500, 1000, 2000, 4000, 8000] */
  restartDelaysMs?: number[];
  /** consecutive failed restarts before `fault`; default 5 */
  maxRestarts?: number;
  spawn?: CaptureSpawnOptions;
}

type State = 'idle' | 'starting' | 'running' | 'stopping' | 'waiting' | 'fault';

interface Run {
  child: ChildProcess;
  runId: string;
  /** wall ms of running time 0, once ready */
  baseWallMs: number | null;
  startedAtMs: number;
  opened: Map<string, bigint>;
  closed: Set<string>;
  lastProgressMono: bigint;
  lastProgressWallMs: number;
  lastBytes: number;
  lastLocation: string | null;
  lastRunningTimeNs: bigint;
  killReason: CaptureRestart['reason'] | null;
  permanent: boolean;
  detail: string;
  exited: Promise<void>;
}

interface PendingSnapshot {
  resolve: (path: string) => void;
  reject: (error: Error) => void;
}

/** A running time from GStreamer, or undefined for GST_CLOCK_TIME_NONE and garbage. */
function validTime(ns: string): bigint | undefined {
  try {
    const t = BigInt(ns);
    return t >= 0n && t < 1n << 62n ? t : undefined;
  } catch {
    return undefined;
  }
}

/** Size in bytes, 0 when missing. */
function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

const CHILD_MODULE = fileURLToPath(new URL('./capture-child.ts', import.meta.url));

export class CaptureSupervisor extends EventEmitter {
  readonly options: CaptureSupervisorOptions;
  private state: State = 'idle';
  private mode: CaptureMode;
  private run: Run | null = null;
  private segmentIndex = 0;
  private runCounter = 0;
  private attempt = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private overlayText: string;
  private snapshotId = 0;
  private readonly snapshots = new Map<number, PendingSnapshot>();
  private readonly now: () => number;
  private readonly mono: () => bigint;

  constructor(options: CaptureSupervisorOptions) {
    super();
    this.options = options;
    this.mode = options.mode ?? 'av';
    this.overlayText = options.overlayText ?? '';
    this.now = options.now ?? Date.now;
    this.mono = options.monotonicNs ?? process.hrtime.bigint;
  }

  get status(): State {
    return this.state;
  }

  /** The pid of the running capture child, if any (for benchmarks and diagnostics). */
  get childPid(): number | undefined {
    return this.run?.child.pid;
  }

  get captureMode(): CaptureMode {
    return this.mode;
  }

  private get hungTimeoutMs(): number {
    return (
      this.options.hungTimeoutMs ?? Math.max(10_000, (2 * this.options.settings.segmentSeconds + 5) * 1000)
    );
  }

  /** Starts capturing; resolves when the pipeline plays. `mode` switches video/audio-only for this start. */
  start(mode?: CaptureMode): Promise<CaptureReady> {
    if (this.state !== 'idle' && this.state !== 'fault') {
      return Promise.reject(new RecorderError('CAPTURE_PIPELINE_FAILED', `capture is already ${this.state}`));
    }
    if (mode) this.mode = mode;
    mkdirSync(this.options.spoolDir, { recursive: true });
    this.attempt = 0;
    const ready = new Promise<CaptureReady>((resolve, reject) => {
      const onReady = (r: CaptureReady) => {
        this.off('fault', onFault);
        resolve(r);
      };
      const onFault = (e: Error) => {
        this.off('ready', onReady);
        reject(e);
      };
      this.once('ready', onReady);
      this.once('fault', onFault);
    });
    this.spawnRun();
    this.watchdog = setInterval(
      () => this.checkWatchdog(),
      Math.max(100, (this.options.heartbeatMs ?? 1000) / 2),
    );
    this.watchdog.unref();
    return ready;
  }

  /**
   * Stops cleanly: the pipeline gets EOS, the open segment is closed, fsync'd and emitted as
   * `segment`, then the child exits. A child that does not finish within stopTimeoutMs is killed and
   * its open segment emitted as torn.
   */
  async stop(): Promise<void> {
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
    }
    const run = this.run;
    if (!run || this.state === 'idle' || this.state === 'fault' || this.state === 'waiting') {
      this.clearWatchdog();
      if (this.state !== 'fault') this.state = 'idle';
      return;
    }
    this.state = 'stopping';
    this.sendToChild({ type: 'stop' });
    const timeoutMs = this.options.stopTimeoutMs ?? 10_000 + this.options.settings.segmentSeconds * 1000;
    const timer = setTimeout(() => {
      run.killReason = 'hung';
      run.child.kill('SIGKILL');
    }, timeoutMs);
    await run.exited;
    clearTimeout(timer);
  }

  /** Sets the watermark text now and for every later (re)start. */
  setOverlay(text: string): void {
    this.overlayText = text;
    if (this.state === 'running' || this.state === 'starting') this.sendToChild({ type: 'overlay', text });
  }

  /** Takes a JPEG of the live (watermarked) video into the spool; resolves with its path. */
  snapshot(timeoutMs = 10_000): Promise<string> {
    if (this.state !== 'running' || !this.run) {
      return Promise.reject(
        new RecorderError('CAPTURE_NOT_RUNNING', 'start capture before taking a snapshot'),
      );
    }
    if (this.mode !== 'av') {
      return Promise.reject(
        new RecorderError('CAPTURE_SNAPSHOT_FAILED', 'audio-only capture has no picture'),
      );
    }
    const id = ++this.snapshotId;
    const path = join(this.options.spoolDir, `photo-${this.run.runId}-${String(id).padStart(4, '0')}.jpg`);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.snapshots.delete(id);
        reject(new RecorderError('CAPTURE_SNAPSHOT_FAILED', `no snapshot within ${timeoutMs} ms`, { path }));
      }, timeoutMs);
      this.snapshots.set(id, {
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.sendToChild({ type: 'snapshot', id, path });
    });
  }

  // ---------------------------------------------------------------------------------------------

  private spawnRun(): void {
    const { settings, spoolDir } = this.options;
    const runId = `${this.now()}r${this.runCounter++}`;
    let launch: string;
    try {
      launch = buildCaptureLaunch(settings, { ...this.options.pipeline, spoolDir, runId, mode: this.mode });
    } catch (error) {
      this.enterFault(error as Error);
      return;
    }
    const config: CaptureChildConfig = {
      launch,
      heartbeatMs: this.options.heartbeatMs ?? 1000,
      overlayText: this.overlayText,
    };
    const spawn = this.options.spawn ?? {};
    const env = { ...(spawn.env ?? process.env) };
    if (!(Number(env.UV_THREADPOOL_SIZE) >= 8)) env.UV_THREADPOOL_SIZE = '8';
    const child = fork(spawn.childModule ?? CHILD_MODULE, [JSON.stringify(config)], {
      execPath: spawn.execPath ?? process.execPath,
      execArgv: spawn.execArgv ?? ['--import=tsx'],
      env,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // Its own process group: a Ctrl-C or SIGTERM to the device's group must not end the capture
      // behind the supervisor's back; the device stops it over IPC, and a dead device closes the
      // IPC channel, which makes the child finish its segment and exit.
      detached: true,
    });
    let resolveExited!: () => void;
    const run: Run = {
      child,
      runId,
      baseWallMs: null,
      startedAtMs: this.now(),
      opened: new Map(),
      closed: new Set(),
      lastProgressMono: this.mono(),
      lastProgressWallMs: this.now(),
      lastBytes: -1,
      lastLocation: null,
      lastRunningTimeNs: 0n,
      killReason: null,
      permanent: false,
      detail: '',
      exited: new Promise<void>((r) => (resolveExited = r)),
    };
    this.run = run;
    this.state = 'starting';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      run.detail = (run.detail + chunk).slice(-2000);
    });
    child.on('message', (message: ChildToParent) => this.onChildMessage(run, message));
    child.on('error', (error) => {
      run.detail = `${run.detail}\n${error.message}`.slice(-2000);
    });
    // 'close': the process has exited and its IPC and stderr are drained, so every message it sent
    // (the last segment-closed, eos) has been handled before we act on the exit.
    child.on('close', (code, signal) => {
      this.onChildExit(run, code, signal);
      resolveExited();
    });
  }

  private onChildMessage(run: Run, message: ChildToParent): void {
    if (run !== this.run) return;
    switch (message.type) {
      case 'ready': {
        // Map running time to this process's wall clock through the shared monotonic clock
        // (GStreamer's system clock is CLOCK_MONOTONIC, as is process.hrtime).
        const ageNs = this.mono() - BigInt(message.baseMonoNs);
        run.baseWallMs = this.now() - Number(ageNs / 1_000_000n);
        this.progress(run);
        if (this.state === 'starting') this.state = 'running';
        this.emit('ready', {
          runId: run.runId,
          pid: message.pid,
          baseWallMs: run.baseWallMs,
          baseUncertaintyMs: Math.ceil(message.playCallMs / 2),
        } satisfies CaptureReady);
        break;
      }
      case 'segment-opened':
        run.opened.set(message.location, validTime(message.runningTimeNs) ?? run.lastRunningTimeNs);
        run.lastLocation = message.location;
        this.progress(run);
        break;
      case 'segment-closed': {
        run.closed.add(message.location);
        const end = validTime(message.runningTimeNs);
        if (end === undefined || fileSize(message.location) === 0) {
          // EOS before the first frame (stop right after start): an empty file, not a segment.
          this.emit('empty', { path: message.location } satisfies EmptySegment);
          break;
        }
        run.lastRunningTimeNs = end;
        this.progress(run);
        // A closed segment proves the pipeline works: the next failure starts the backoff afresh.
        this.attempt = 0;
        this.emitSegment(run, message.location, run.opened.get(message.location) ?? 0n, end, false);
        break;
      }
      case 'heartbeat':
        if (message.location !== run.lastLocation || message.bytes !== run.lastBytes) {
          run.lastLocation = message.location ?? run.lastLocation;
          run.lastBytes = message.bytes;
          this.progress(run);
        }
        break;
      case 'snapshot-done': {
        const pending = this.snapshots.get(message.id);
        this.snapshots.delete(message.id);
        pending?.resolve(message.path);
        break;
      }
      case 'snapshot-failed': {
        const pending = this.snapshots.get(message.id);
        this.snapshots.delete(message.id);
        pending?.reject(new RecorderError('CAPTURE_SNAPSHOT_FAILED', message.message));
        break;
      }
      case 'error':
        run.detail = `${message.element ? `${message.element}: ` : ''}${message.message}`;
        run.killReason ??= 'pipeline-error';
        if (message.permanent) run.permanent = true;
        break;
      case 'eos':
        break;
    }
  }

  private progress(run: Run): void {
    run.lastProgressMono = this.mono();
    run.lastProgressWallMs = this.now();
  }

  private emitSegment(run: Run, path: string, startRt: bigint, endRt: bigint, torn: boolean): void {
    const base = run.baseWallMs ?? run.startedAtMs;
    const startMs = base + Number(startRt / 1_000_000n);
    let endMs = base + Number(endRt / 1_000_000n);
    if (torn) endMs = Math.max(startMs, run.lastProgressWallMs);
    const bytes = fileSize(path);
    const segment: ClosedSegment = {
      path,
      index: this.segmentIndex++,
      runId: run.runId,
      startMs,
      endMs,
      durationMs: endMs - startMs,
      startRunningTimeNs: String(startRt),
      endRunningTimeNs: String(torn ? BigInt(endMs - base) * 1_000_000n : endRt),
      hasAudio: this.mode === 'audio' || this.options.settings.audio,
      hasVideo: this.mode === 'av',
      bytes,
      torn,
    };
    this.emit('segment', segment);
  }

  /** Segments of a run that ended without closing them: left in the spool, reported as torn. */
  private emitTorn(run: Run): void {
    const found = new Set<string>(run.opened.keys());
    try {
      for (const name of readdirSync(this.options.spoolDir)) {
        if (parseSegmentName(name)?.runId === run.runId) found.add(join(this.options.spoolDir, name));
      }
    } catch {
      // spool unreadable: report what the child told us
    }
    const torn = [...found]
      .filter((p) => !run.closed.has(p))
      .sort((a, b) => basename(a).localeCompare(basename(b)));
    for (const path of torn) {
      if (fileSize(path) === 0) {
        this.emit('empty', { path } satisfies EmptySegment);
        continue;
      }
      const startRt = run.opened.get(path) ?? run.lastRunningTimeNs;
      this.emitSegment(run, path, startRt, startRt, true);
    }
  }

  private onChildExit(run: Run, code: number | null, signal: NodeJS.Signals | null): void {
    if (run !== this.run) return;
    this.run = null;
    for (const [id, pending] of this.snapshots) {
      this.snapshots.delete(id);
      pending.reject(new RecorderError('CAPTURE_NOT_RUNNING', 'the capture child exited'));
    }
    const clean = code === 0 && run.killReason === null;
    if (!clean) this.emitTorn(run);
    if (this.state === 'stopping') {
      this.clearWatchdog();
      this.state = 'idle';
      return;
    }
    // Unexpected exit (crash, pipeline error, or killed by the watchdog): restart with backoff.
    this.attempt++;
    const max = this.options.maxRestarts ?? 5;
    const reason: CaptureRestart['reason'] = run.killReason ?? (code === 0 ? 'pipeline-error' : 'crashed');
    if (this.attempt > max || run.permanent) {
      this.enterFault(
        new RecorderError(
          'CAPTURE_FAULT',
          run.permanent
            ? `the capture pipeline cannot be built: ${run.detail.trim()}; check the profile's encoder and the installed GStreamer plugins`
            : `capture failed ${this.attempt} times in a row (last: ${reason}); check the camera, microphone and profile`,
          { reason, code, signal, detail: run.detail.trim() },
        ),
      );
      return;
    }
    const delays = this.options.restartDelaysMs ?? [500, 1000, 2000, 4000, 8000];
    const delayMs = delays[Math.min(this.attempt - 1, delays.length - 1)] ?? 1000;
    this.state = 'waiting';
    this.emit('restart', {
      reason,
      attempt: this.attempt,
      delayMs,
      code,
      signal,
      detail: run.detail.trim(),
    } satisfies CaptureRestart);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.state === 'waiting') this.spawnRun();
    }, delayMs);
  }

  private enterFault(error: Error): void {
    this.clearWatchdog();
    this.state = 'fault';
    this.emit('fault', error);
  }

  private checkWatchdog(): void {
    const run = this.run;
    if (!run || run.killReason) return;
    const idleMs = Number((this.mono() - run.lastProgressMono) / 1_000_000n);
    if (this.state === 'starting' && idleMs > (this.options.startTimeoutMs ?? 20_000)) {
      run.killReason = 'start-timeout';
      run.child.kill('SIGKILL');
    } else if (this.state === 'running' && idleMs > this.hungTimeoutMs) {
      run.killReason = 'hung';
      run.child.kill('SIGKILL');
    }
  }

  private clearWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  private sendToChild(message: ParentToChild): void {
    const child = this.run?.child;
    if (child?.connected) child.send(message);
  }
}
