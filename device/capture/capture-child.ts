/**
 * The capture child: owns one GStreamer pipeline (gstreamer-superficial), polls its bus and reports
 * over IPC (capture-protocol.ts). Runs as its own process because a crash inside a GStreamer element
 * kills the whole Node process and a stuck state change can hang it (STACK-NOTES): the device
 * process supervises it (capture-supervisor.ts).
 *
 * Run: node --import=tsx device/capture/capture-child.ts '<CaptureChildConfig JSON>' (with an IPC channel).
 */
import { createRequire } from 'node:module';
import { open, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CaptureChildConfig, ChildToParent, ParentToChild } from './capture-protocol.ts';
import { ChildExit } from './capture-protocol.ts';
import { CaptureElements } from './pipeline.ts';

// pollBus holds one libuv thread-pool thread for as long as the pipeline runs and the snapshot
// pull another; fsync needs the rest (STACK-NOTES). The supervisor also sets it in the child's
// environment, which is what counts if anything touched the pool before this line.
process.env.UV_THREADPOOL_SIZE ??= '8';

/** The part of gstreamer-superficial this child uses (the addon ships no typings). */
interface GstElement {
  [property: string]: unknown;
  pull?(callback: (buf: Buffer | null, caps: Record<string, unknown>) => void): void;
}
interface GstPipeline {
  play(): void;
  stop(): void;
  sendEOS(): void;
  findChild(name: string): GstElement | undefined;
  pollBus(callback: (message: GstBusMessage) => void): void;
}
interface GstBusMessage {
  type: string;
  name?: string;
  _src_element_name?: string;
  message?: string;
  location?: string;
  'running-time'?: string | number;
  'new-state'?: string | number;
  [field: string]: unknown;
}

function send(message: ChildToParent): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

async function fsyncPath(path: string, flags: 'r' = 'r'): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function parseConfig(): CaptureChildConfig {
  try {
    const config = JSON.parse(process.argv[2] ?? '') as CaptureChildConfig;
    if (typeof config.launch !== 'string' || config.launch.length === 0) throw new Error('no launch string');
    return config;
  } catch (error) {
    process.stderr.write(`capture-child: bad config: ${(error as Error).message}\n`);
    process.exit(ChildExit.badConfig);
  }
}

// Listen from the first moment: a `stop` or `overlay` sent while the pipeline is still being
// built is kept and applied once it plays, not lost.
const earlyMessages: ParentToChild[] = [];
let dispatchMessage: ((m: ParentToChild) => void) | null = null;
process.on('message', (m: ParentToChild) => (dispatchMessage ? dispatchMessage(m) : earlyMessages.push(m)));

const config = parseConfig();
const require = createRequire(import.meta.url);
const { Pipeline } = require('gstreamer-superficial') as {
  Pipeline: new (launch: string) => GstPipeline;
};

let pipeline: GstPipeline;
try {
  pipeline = new Pipeline(config.launch);
} catch (error) {
  // A missing element or a syntax error: no restart can fix it.
  await send({
    type: 'error',
    message: `pipeline could not be built: ${(error as Error).message}`,
    permanent: true,
  });
  process.exit(ChildExit.pipelineError);
}

const overlay = pipeline.findChild(CaptureElements.overlay);
const valve = pipeline.findChild(CaptureElements.snapshotValve);
const snapSink = pipeline.findChild(CaptureElements.snapshotSink);
if (overlay && config.overlayText !== undefined) overlay.text = config.overlayText;

// The pipeline element is the top-level bin; gst_parse_launch names it pipeline0, pipeline1, ...
const pipelineName = /^pipeline\d+$/;
let stopping = false;
let ready = false;
let fsyncChain: Promise<void> = Promise.resolve();
let baseWallMs = 0;
let baseMonoNs = 0n;
let playCallMs = 0;
let openLocation: string | null = null;

function announceReady(): void {
  if (ready) return;
  ready = true;
  void send({ type: 'ready', pid: process.pid, baseWallMs, baseMonoNs: String(baseMonoNs), playCallMs });
}

function runningTime(message: GstBusMessage): string {
  const value = message['running-time'];
  return typeof value === 'string' ? value : String(BigInt(Math.round(Number(value ?? -1))));
}

async function finish(code: number): Promise<never> {
  clearInterval(heartbeat);
  try {
    pipeline.stop();
  } catch {
    // already stopped
  }
  process.exit(code);
}

let pipelineSeenLeavingNull = false;
let pumping = false;

function onBusMessage(message: GstBusMessage): void {
  if (pipelineName.test(message._src_element_name ?? '')) pipelineSeenLeavingNull = true;
  if (pumping && !pipelineSeenLeavingNull) setImmediate(() => pipeline.pollBus(onBusMessage));
  switch (message.type) {
    case 'element': {
      if (message.name === 'splitmuxsink-fragment-opened' && message.location) {
        announceReady();
        openLocation = message.location;
        void send({
          type: 'segment-opened',
          location: message.location,
          runningTimeNs: runningTime(message),
        });
      } else if (message.name === 'splitmuxsink-fragment-closed' && message.location) {
        const location = message.location;
        const rt = runningTime(message);
        // filesink does not fsync: do it here, file then directory, before telling anyone the
        // segment is closed, so the sealer never reads a segment a power cut could still take away.
        fsyncChain = fsyncChain.then(async () => {
          const t0 = performance.now();
          try {
            await fsyncPath(location);
            await fsyncPath(dirname(location));
          } catch (error) {
            await send({ type: 'error', message: `fsync ${location}: ${(error as Error).message}` });
          }
          await send({
            type: 'segment-closed',
            location,
            runningTimeNs: rt,
            fsyncMs: Math.round(performance.now() - t0),
          });
        });
      }
      break;
    }
    case 'state-changed':
      if (
        pipelineName.test(message._src_element_name ?? '') &&
        /playing/i.test(String(message['new-state']))
      ) {
        announceReady();
      }
      break;
    case 'error':
      void (async () => {
        await send({ type: 'error', message: message.message ?? 'pipeline error', element: message.name });
        await fsyncChain;
        await finish(ChildExit.pipelineError);
      })();
      break;
    case 'eos':
      void (async () => {
        await fsyncChain;
        await send({ type: 'eos' });
        await finish(ChildExit.ok);
      })();
      break;
    default:
      break;
  }
}

pipeline.pollBus(onBusMessage);

baseWallMs = Date.now();
baseMonoNs = process.hrtime.bigint();
pipeline.play();
// base_time is taken inside play() (PAUSED→PLAYING of a live pipeline): the midpoint of the call
// is the best estimate of the wall-clock time of running time 0.
const afterMono = process.hrtime.bigint();
const spanNs = afterMono - baseMonoNs;
playCallMs = Number(spanNs / 1000n) / 1000;
baseWallMs += Number(spanNs / 2n / 1_000_000n);
baseMonoNs += spanNs / 2n;

// gstreamer-superficial stops polling the bus after any message that finds the pipeline in NULL,
// which is where a pipeline that failed to start (camera missing) stays: its error message would
// never be read. The top-level pipeline posts state changes within milliseconds of play(); none
// after 1.5 s means it never left NULL. Then poll one message at a time (each poll ends after its
// message) until the error arrives, and exit on it.
const rearm = setTimeout(() => {
  if (pipelineSeenLeavingNull) return;
  pumping = true;
  pipeline.pollBus(onBusMessage);
}, 1500);
rearm.unref();

const heartbeatMs = config.heartbeatMs ?? 1000;
// Progress is the growth of the open segment file: the pipeline's position query answers per
// fragment from the muxer and is not monotonic, and a clock-based position would keep advancing
// while the pipeline is stuck. A hung pipeline stops growing its file; a hung child stops beating.
const heartbeat = setInterval(() => {
  const location = openLocation;
  if (!location) return void send({ type: 'heartbeat', location: null, bytes: 0 });
  stat(location).then(
    (s) => send({ type: 'heartbeat', location, bytes: s.size }),
    () => send({ type: 'heartbeat', location, bytes: 0 }),
  );
}, heartbeatMs);

// ---- snapshots: one perpetual pull loop drains the appsink; a frame that arrives while a request
// is waiting fulfils it, any other (left over from the previous opening of the valve) is dropped.
interface SnapshotRequest {
  id: number;
  path: string;
  timer: NodeJS.Timeout;
}
const snapshotQueue: SnapshotRequest[] = [];
let pullLoopRunning = false;

function openValveForHead(): void {
  if (valve && snapshotQueue.length > 0) valve.drop = false;
}

function onSnapshotFrame(buf: Buffer | null): void {
  if (!buf) {
    pullLoopRunning = false; // EOS
    for (const r of snapshotQueue.splice(0)) {
      clearTimeout(r.timer);
      void send({ type: 'snapshot-failed', id: r.id, message: 'the pipeline ended' });
    }
    return;
  }
  const request = snapshotQueue.shift();
  if (request) {
    if (valve && snapshotQueue.length === 0 && !stopping) valve.drop = true;
    clearTimeout(request.timer);
    void (async () => {
      try {
        await writeFile(request.path, buf, { flag: 'wx' });
        await fsyncPath(request.path);
        await fsyncPath(dirname(request.path));
        await send({ type: 'snapshot-done', id: request.id, path: request.path, bytes: buf.length });
      } catch (error) {
        await send({ type: 'snapshot-failed', id: request.id, message: (error as Error).message });
      }
    })();
  }
  snapSink?.pull?.(onSnapshotFrame);
}

function requestSnapshot(id: number, path: string): void {
  if (!valve || !snapSink?.pull) {
    void send({ type: 'snapshot-failed', id, message: 'this pipeline has no video (audio-only)' });
    return;
  }
  if (stopping) {
    void send({ type: 'snapshot-failed', id, message: 'capture is stopping' });
    return;
  }
  const timer = setTimeout(() => {
    const i = snapshotQueue.findIndex((r) => r.id === id);
    if (i >= 0) snapshotQueue.splice(i, 1);
    if (snapshotQueue.length === 0 && valve) valve.drop = true;
    void send({ type: 'snapshot-failed', id, message: 'no frame within 5 s' });
  }, 5000);
  snapshotQueue.push({ id, path, timer });
  if (!pullLoopRunning) {
    pullLoopRunning = true;
    snapSink.pull(onSnapshotFrame);
  }
  openValveForHead();
}

function stop(): void {
  if (stopping) return;
  stopping = true;
  // forward-sticky-events lets EOS pass the closed valve; opening it as well costs one JPEG.
  pipeline.sendEOS();
}

function dispatch(raw: ParentToChild): void {
  switch (raw?.type) {
    case 'overlay':
      if (overlay && typeof raw.text === 'string') overlay.text = raw.text;
      break;
    case 'snapshot':
      requestSnapshot(raw.id, raw.path);
      break;
    case 'stop':
      stop();
      break;
    default:
      break;
  }
}
dispatchMessage = dispatch;
for (const m of earlyMessages.splice(0)) dispatch(m);
// The device process died (or closed the channel): finish the open segment cleanly rather than
// leave it torn; the device recovers it at its next start.
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
