/**
 * Profile files: read and validate one (every problem at once, each naming its field), build a
 * simulated profile for `recorder profile init --sim`, and the on-device check that the profile's
 * encoder element is installed.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { RecorderError } from '../protocol/errors.ts';
import { parseProfile, type Profile } from '../protocol/schemas/profile.ts';
import type { SchemaProblem } from '../protocol/schemas/validate.ts';
import { defaultSpoolDir, statePaths } from './state-paths.ts';

/** Reads and validates a profile file. Throws FILE_NOT_FOUND or PROFILE_INVALID (listing every problem). */
export function loadProfileFile(path: string): Profile {
  const problems = profileFileProblems(path);
  if (problems.length > 0) {
    const lines = problems.map((p) => `  ${p.path}: ${p.message}`).join('\n');
    throw new RecorderError('PROFILE_INVALID', `profile ${path} is invalid:\n${lines}\n`, { problems });
  }
  return parseProfile(JSON.parse(readFileSync(path, 'utf8')));
}

/** Every problem of a profile file as `path: message`; [] when it is valid. Throws FILE_NOT_FOUND. */
export function profileFileProblems(path: string): SchemaProblem[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RecorderError('FILE_NOT_FOUND', `profile ${path} does not exist`, { path });
    }
    throw error;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return [{ path: '/', message: `not JSON: ${(error as Error).message}` }];
  }
  try {
    parseProfile(value);
    return [];
  } catch (error) {
    const problems = (error as RecorderError).context?.problems as SchemaProblem[] | undefined;
    if (problems) return problems;
    throw error;
  }
}

export interface SimProfileOptions {
  unit: string;
  device: string;
  officers: string[];
  centerPublicKeyPem: string;
  /** state directory; evidence goes to STATE/evidence, the spool to RAM. Default ./recorder-state */
  stateDir?: string;
  segmentSeconds?: number;
  prerecordSeconds?: number;
  postrecordSeconds?: number;
  width?: number;
  height?: number;
  fps?: number;
}

/** A complete simulated profile (videotestsrc, x264enc, simulated GPIO/GNSS/battery), validated. */
export function buildSimProfile(options: SimProfileOptions): Profile {
  const state = resolve(options.stateDir ?? 'recorder-state');
  const capture: Record<string, unknown> = { source: 'sim', encoder: 'x264enc' };
  for (const key of [
    'segmentSeconds',
    'prerecordSeconds',
    'postrecordSeconds',
    'width',
    'height',
    'fps',
  ] as const) {
    if (options[key] !== undefined) capture[key] = options[key];
  }
  return parseProfile({
    format: 'recorder-profile/1',
    version: 1,
    kind: 'body',
    unit: options.unit,
    device: options.device,
    officers: options.officers,
    capture,
    storage: {
      evidenceDir: statePaths(state).evidenceDir,
      // Plaintext only in RAM (DESIGN.md "Sealing").
      spoolDir: defaultSpoolDir(state),
      reserveMB: 2048,
      minimumMB: 512,
    },
    centerPublicKey: options.centerPublicKeyPem,
    hardware: { gpio: { driver: 'sim' }, gnss: { driver: 'sim' }, battery: { driver: 'sim' } },
  });
}

export interface EncoderCheckOptions {
  /** Default `gst-inspect-1.0`. */
  gstInspect?: string;
  /** Default 10 s: gst-inspect scans the plugin registry on its first run. */
  timeoutMs?: number;
}

/**
 * On the device: is the profile's encoder element installed? Throws PROFILE_ENCODER_UNKNOWN naming
 * `/capture/encoder` and what to do. The device runner calls this before it builds a pipeline.
 */
export async function checkEncoderElement(element: string, options: EncoderCheckOptions = {}): Promise<void> {
  const program = options.gstInspect ?? 'gst-inspect-1.0';
  const result = await new Promise<{ code: number | null; error?: Error }>((done) => {
    const child = spawn(program, ['--exists', element], {
      stdio: 'ignore',
      timeout: options.timeoutMs ?? 10_000,
    });
    child.on('error', (error) => done({ code: null, error }));
    child.on('close', (code) => done({ code }));
  });
  if (result.error) {
    throw new RecorderError(
      'PROFILE_ENCODER_UNKNOWN',
      `/capture/encoder: cannot check GStreamer element '${element}': ${program} did not run ` +
        `(${result.error.message}); install gstreamer1.0-tools`,
      { path: '/capture/encoder', element },
    );
  }
  if (result.code !== 0) {
    throw new RecorderError(
      'PROFILE_ENCODER_UNKNOWN',
      `/capture/encoder: GStreamer element '${element}' is not installed on this device ` +
        `(${program} --exists ${element} failed); install the board's encoder plugin or use x264enc`,
      { path: '/capture/encoder', element },
    );
  }
}
