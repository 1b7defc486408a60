/** Starts a real `recorder device run` in a child process and talks to it through its control socket. */
import type { ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest } from '../../device/control-socket.ts';
import type { RecorderStatus } from '../../device/recorder.ts';
import { statePaths } from '../../device/state-paths.ts';
import { runRecorder, spawnRecorder } from './cli.ts';
import { needPrograms } from './system.ts';

export interface SimRecorderFiles {
  dir: string;
  state: string;
  profile: string;
  centerKey: string;
}

/** A center key pair and a small, fast simulated profile in a fresh directory. */
export async function simRecorderFiles(
  dir: string,
  patch: (profile: Record<string, any>) => void = () => undefined, // eslint-disable-line @typescript-eslint/no-explicit-any
): Promise<SimRecorderFiles> {
  needPrograms('gst-launch-1.0', 'gst-inspect-1.0', 'ffprobe');
  const keys = await runRecorder(['keys', 'center', '--out', join(dir, 'center')]);
  if (keys.code !== 0) throw new Error(keys.stderr);
  const profile = join(dir, 'profile.json');
  const state = join(dir, 'state');
  const init = await runRecorder([
    'profile', 'init', '--sim', '--unit', 'HN', '--device', 'HN-CS-0001', '--officer', 'HN-0427',
    '--center-pubkey', join(dir, 'center', 'center.pub.pem'), '--out', profile, '--state', state,
    '--segment-seconds', '1', '--prerecord-seconds', '3', '--postrecord-seconds', '1',
    '--width', '320', '--height', '240', '--fps', '10',
  ]); // prettier-ignore
  if (init.code !== 0) throw new Error(init.stderr);
  const doc = JSON.parse(readFileSync(profile, 'utf8'));
  patch(doc);
  writeFileSync(profile, JSON.stringify(doc, null, 2));
  return { dir, state, profile, centerKey: join(dir, 'center', 'center.key.pem') };
}

export class DeviceProcess {
  output = '';
  readonly exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly files: SimRecorderFiles,
  ) {
    child.stdout!.on('data', (d: Buffer) => (this.output += d));
    child.stderr!.on('data', (d: Buffer) => (this.output += d));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start(
    t: ExecutionContext,
    files: SimRecorderFiles,
    extra: string[] = [],
  ): Promise<DeviceProcess> {
    const args = [
      'device',
      'run',
      // '' : the signed profile in force in the state directory (a flashed device)
      ...(files.profile ? ['--profile', files.profile] : []),
      '--state',
      files.state,
      ...extra,
    ];
    const child = spawnRecorder(args);
    const device = new DeviceProcess(child, files);
    t.teardown(() => {
      if (device.child.exitCode === null) device.child.kill('SIGKILL');
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await device.status();
        return device;
      } catch (error) {
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`recorder did not start: ${(error as Error).message}\n${device.output}`, {
            cause: error,
          });
        }
        await sleep(250);
      }
    }
  }

  status(): Promise<RecorderStatus> {
    return controlRequest(statePaths(this.files.state).controlSocket, 'status') as Promise<RecorderStatus>;
  }

  press(button: string, kind = 'short'): Promise<RecorderStatus> {
    return controlRequest(statePaths(this.files.state).controlSocket, 'press', {
      button,
      kind,
    }) as Promise<RecorderStatus>;
  }

  async until(check: (s: RecorderStatus) => boolean, timeoutMs = 30_000): Promise<RecorderStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.status();
      if (check(status)) return status;
      if (Date.now() > deadline) throw new Error(`status never matched: ${JSON.stringify(status)}`);
      await sleep(200);
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
    this.child.kill(signal);
    return this.exited;
  }
}

export interface LoggedEntry {
  seq: number;
  kind: string;
  time: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies differ by kind; tests read what they need
  body: Record<string, any>;
}

export function journalEntries(state: string): LoggedEntry[] {
  return readFileSync(statePaths(state).journal, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
