/**
 * Builds the gst-launch description of the capture pipeline from the profile's capture settings.
 * Pure: no I/O. Every number and enum goes into this string, because gstreamer-superficial sets
 * numeric properties through a float and cannot set enums from strings (STACK-NOTES); at run time
 * only strings and booleans are set (`textoverlay.text`, `valve.drop`).
 *
 * Shape (video mode):
 *
 *   src ! I420 caps ! textoverlay name=watermark ! tee ─┬─ queue ! encoder ! h264parse ! splitmuxsink.video
 *                                                      └─ queue(leaky) ! valve name=snapvalve ! jpegenc ! appsink name=snapsink
 *   audio src ! audioconvert ! audioresample ! caps ! AAC encoder ! aacparse ! queue ! splitmuxsink.audio_0
 *
 * The container is MPEG-TS: a segment cut off mid-write (power cut, SIGKILL) still demuxes up to its
 * last complete packet, unlike plain MP4 whose index is written at the end (DESIGN.md "Capture").
 */
import type { CaptureSettings } from '../../protocol/schemas/profile.ts';
import { RecorderError } from '../../protocol/errors.ts';

/** Names of the elements the capture child looks up at run time. */
export const CaptureElements = {
  overlay: 'watermark',
  splitmux: 'segments',
  snapshotValve: 'snapvalve',
  snapshotSink: 'snapsink',
} as const;

/** H.264 encoders the pipeline knows how to configure; the profile names one of them. */
export const SUPPORTED_ENCODERS = ['x264enc', 'v4l2h264enc', 'mpph264enc'] as const;
export type SupportedEncoder = (typeof SUPPORTED_ENCODERS)[number];

/** AAC encoders found in Debian: voaacenc (gstreamer1.0-plugins-bad), avenc_aac (gstreamer1.0-libav). */
export type AacEncoder = 'voaacenc' | 'avenc_aac';

export type CaptureMode = 'av' | 'audio';

export interface PipelineOptions {
  /** directory the segments are written to (the RAM spool) */
  spoolDir: string;
  /** distinguishes the files of one pipeline run from those of earlier runs (crash, restart); [A-Za-z0-9_-]+ */
  runId: string;
  /** 'av' (default): video (+ audio when the profile says so); 'audio': the audio-only button */
  mode?: CaptureMode;
  /** default 'voaacenc' */
  aacEncoder?: AacEncoder;
  /** default 64 */
  audioBitrateKbps?: number;
  /** default 48000 */
  audioRate?: number;
  /**
   * key frame interval in seconds (default 1). Every segment starts on a key frame whatever this
   * is (splitmuxsink asks the encoder for one at each cut), but a short GOP keeps a torn segment
   * decodable from near its cut and bounds the time to the first picture after a restart.
   */
  keyframeSeconds?: number;
}

export const SEGMENT_EXTENSION = '.ts';

/** `seg-<runId>-<index>.ts` — the glob the child and the sealer use to recognise segments. */
export function segmentLocationPattern(spoolDir: string, runId: string): string {
  return `${spoolDir.replace(/\/+$/, '')}/seg-${runId}-%06d${SEGMENT_EXTENSION}`;
}

const SEGMENT_NAME = /^seg-([A-Za-z0-9_-]+)-(\d{6,})\.ts$/;

/** Parses a segment file name (basename) into its run id and index within the run, or undefined. */
export function parseSegmentName(name: string): { runId: string; index: number } | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (!m) return undefined;
  return { runId: m[1]!, index: Number(m[2]) };
}

/** Quotes a string property value for gst_parse_launch. */
export function quoteGstString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function assertEncoder(encoder: string): asserts encoder is SupportedEncoder {
  if (!(SUPPORTED_ENCODERS as readonly string[]).includes(encoder)) {
    throw new RecorderError(
      'CAPTURE_ENCODER_UNSUPPORTED',
      `encoder ${encoder} is not one of ${SUPPORTED_ENCODERS.join(', ')}; set capture.encoder in the profile`,
      { encoder },
    );
  }
}

/** The encoder chain, ending in byte-stream H.264 with SPS/PPS before every key frame. */
export function encoderChain(settings: CaptureSettings, keyInt: number): string {
  const encoder = settings.encoder;
  assertEncoder(encoder);
  const bps = settings.bitrateKbps * 1000;
  let chain: string;
  switch (encoder) {
    case 'x264enc':
      // zerolatency: no B-frames and no lookahead, so a frame is written as soon as it is encoded
      // and a power cut loses at most the frames still in the encoder.
      chain = `x264enc tune=zerolatency speed-preset=ultrafast key-int-max=${keyInt} bitrate=${settings.bitrateKbps}`;
      break;
    case 'v4l2h264enc':
      // Raspberry Pi: settings go through V4L2 controls; the level caps are needed or negotiation
      // fails at 1080p. Not run on this machine (no such hardware): built from the driver's controls.
      chain =
        `v4l2h264enc extra-controls=${quoteGstString(`controls,video_bitrate=${bps},h264_i_frame_period=${keyInt},repeat_sequence_header=1`)}` +
        ` ! video/x-h264,level=(string)4`;
      break;
    case 'mpph264enc':
      // Rockchip MPP: gop and bps are plain properties. Not run on this machine (no such hardware).
      chain = `mpph264enc gop=${keyInt} bps=${bps} rc-mode=cbr`;
      break;
  }
  // config-interval=-1: SPS/PPS with every IDR, so each segment (and a torn one) decodes alone.
  return `${chain} ! h264parse config-interval=-1`;
}

function videoSource(settings: CaptureSettings): string {
  const caps = `video/x-raw,format=I420,width=${settings.width},height=${settings.height},framerate=${settings.fps}/1`;
  // format=I420: without it x264 picks High 4:4:4 that most decoders cannot play (STACK-NOTES).
  if (settings.source === 'sim') return `videotestsrc is-live=true ! ${caps}`;
  return `v4l2src device=${quoteGstString(settings.videoDevice)} ! videoconvert ! videoscale ! videorate ! ${caps}`;
}

function audioSource(settings: CaptureSettings): string {
  if (settings.source === 'sim') return 'audiotestsrc is-live=true wave=sine';
  return `alsasrc device=${quoteGstString(settings.audioDevice)}`;
}

function audioChain(settings: CaptureSettings, options: PipelineOptions, sink: string): string {
  const rate = options.audioRate ?? 48000;
  const kbps = options.audioBitrateKbps ?? 64;
  const enc = options.aacEncoder ?? 'voaacenc';
  return (
    `${audioSource(settings)} ! audioconvert ! audioresample ! audio/x-raw,rate=${rate},channels=1 ! ` +
    `${enc} bitrate=${kbps * 1000} ! aacparse ! queue max-size-time=3000000000 ! ${sink}.audio_0`
  );
}

/** The gst-launch description for one capture run. */
export function buildCaptureLaunch(settings: CaptureSettings, options: PipelineOptions): string {
  if (!/^[A-Za-z0-9_-]+$/.test(options.runId)) {
    throw new RecorderError('CAPTURE_PIPELINE_FAILED', `run id ${options.runId} must match [A-Za-z0-9_-]+`);
  }
  const mode = options.mode ?? 'av';
  const n = CaptureElements;
  const keyInt = Math.max(1, Math.round(settings.fps * (options.keyframeSeconds ?? 1)));
  const segmentNs = BigInt(settings.segmentSeconds) * 1_000_000_000n;
  // No max-files: evidence is never deleted automatically; the device decides (DESIGN.md "Storage guard").
  // send-keyframe-requests: ask the encoder for a key frame exactly at each cut, so segments are
  // segmentSeconds long even when the encoder's own GOP does not divide them.
  // sink::buffer-mode=unbuffered: splitmuxsink's internal filesink otherwise keeps 64 KiB in user
  // space (measured: a whole 1 s segment at 500 kbit/s), all of it lost when the process dies; with
  // it every frame reaches the kernel when muxed, so a killed child's segment keeps what was written.
  const sink =
    `splitmuxsink name=${n.splitmux} muxer=mpegtsmux max-size-time=${segmentNs} send-keyframe-requests=true ` +
    `sink::buffer-mode=unbuffered ` +
    `location=${quoteGstString(segmentLocationPattern(options.spoolDir, options.runId))}`;
  const parts: string[] = [sink];
  if (mode === 'av') {
    parts.push(
      `${videoSource(settings)} ! textoverlay name=${n.overlay} text="" valignment=top halignment=left ` +
        `shaded-background=true font-desc="Monospace ${Math.max(8, Math.round(settings.height / 40))}" ! ` +
        `tee name=rawtee ` +
        `rawtee. ! queue max-size-time=3000000000 ! ${encoderChain(settings, keyInt)} ! queue ! ${n.splitmux}.video ` +
        // Photo button: the valve is opened for one frame at a time; forward-sticky-events lets EOS
        // through while closed (the default drop-all swallows it and the pipeline never ends).
        `rawtee. ! queue leaky=downstream max-size-buffers=1 ! valve name=${n.snapshotValve} drop=true drop-mode=forward-sticky-events ! ` +
        `jpegenc quality=90 ! appsink name=${n.snapshotSink} async=false sync=false max-buffers=1 drop=false`,
    );
    if (settings.audio) parts.push(audioChain(settings, options, n.splitmux));
  } else {
    parts.push(audioChain(settings, options, n.splitmux));
  }
  return parts.join('  ');
}
