/**
 * IPC messages between the device process (CaptureSupervisor) and the capture child. Plain JSON
 * over the Node IPC channel; running times are nanoseconds as decimal strings (they exceed 2^53
 * after ~104 days of uptime and arrive from GStreamer as strings anyway: STACK-NOTES).
 */

/** What the supervisor passes to the child as argv[2] (JSON). */
export interface CaptureChildConfig {
  /** the gst-launch description (buildCaptureLaunch) */
  launch: string;
  /** how often the child reports progress; default 1000 */
  heartbeatMs?: number;
  /** overlay text to apply before the pipeline plays */
  overlayText?: string;
}

export type ChildToParent =
  /** the pipeline is PLAYING; wall-clock and monotonic time (ns, decimal) taken around play() */
  | { type: 'ready'; pid: number; baseWallMs: number; baseMonoNs: string; playCallMs: number }
  | { type: 'segment-opened'; location: string; runningTimeNs: string }
  /** the fragment is complete on disk and fsync'd (file and directory) */
  | { type: 'segment-closed'; location: string; runningTimeNs: string; fsyncMs: number }
  /** the open segment and its size now: the supervisor's watchdog wants to see it grow */
  | { type: 'heartbeat'; location: string | null; bytes: number }
  | { type: 'snapshot-done'; id: number; path: string; bytes: number }
  | { type: 'snapshot-failed'; id: number; message: string }
  /** `permanent`: the pipeline cannot be built (missing element): restarting will not help */
  | { type: 'error'; message: string; element?: string; permanent?: boolean }
  /** end of stream reached after `stop`: every fragment is closed and fsync'd; the child exits 0 */
  | { type: 'eos' };

export type ParentToChild =
  { type: 'overlay'; text: string } | { type: 'snapshot'; id: number; path: string } | { type: 'stop' };

/** Exit codes of the capture child. */
export const ChildExit = {
  ok: 0,
  pipelineError: 3,
  badConfig: 4,
} as const;
