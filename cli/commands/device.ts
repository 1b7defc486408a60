/**
 * `recorder device run|press|status|dock|undock`: the recorder itself, and the buttons and status
 * of a running one from another shell (through the control socket in its state directory).
 */
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ControlServer, controlRequest } from '../../device/control-socket.ts';
import { checkEncoderElement, loadProfileFile } from '../../device/profile-file.ts';
import { Recorder, type RecorderStatus } from '../../device/recorder.ts';
import { statePaths } from '../../device/state-paths.ts';
import { createHardware, createStorage } from '../../hardware/factory.ts';
import type { ButtonName, PressKind } from '../../hardware/buttons.ts';
import { RecorderError } from '../../protocol/errors.ts';
import { parseProfile, type Profile } from '../../protocol/schemas/profile.ts';
import { EXIT_OK, printJson } from '../output.ts';

type Run = (action: () => Promise<number>) => Promise<void>;

const BUTTONS: ButtonName[] = ['record', 'mark', 'photo', 'audio'];

export function registerDevice(program: Command, run: Run): Command {
  const device = program
    .command('device')
    .description('run a recorder, or press its buttons and read its status');

  device
    .command('run')
    .description(
      'run the recorder: capture, seal, journal; SIGINT/SIGTERM finalize and seal the open segment',
    )
    .option(
      '--profile <file>',
      'the device profile; default the signed profile in force in --state (a device provisioned with recorder flash)',
    )
    .requiredOption('--state <dir>', 'the state directory (keys, journal, state)')
    .option(
      '--allow-disk-spool',
      'allow a plaintext spool outside tmpfs (tests only: plaintext must stay in RAM)',
    )
    .option(
      '--gnss-replay <nmea-log>',
      'simulated GNSS (hardware.gnss.driver "sim"): replay this receiver log, looping',
    )
    .action((opts: RunOptions) => run(() => runDevice(opts)));

  device
    .command('press')
    .description('press a button of the recorder running on --state')
    .argument('<button>', BUTTONS.join('|'))
    .option('--long', 'a long press (stops a recording)')
    .option('--double', 'a double press (also stops a recording)')
    .requiredOption('--state <dir>', 'the state directory of the running recorder')
    .option('--json', 'print the status after the press as JSON')
    .action((button: string, opts: { long?: boolean; double?: boolean; state: string; json?: boolean }) =>
      run(async () => {
        if (!BUTTONS.includes(button as ButtonName)) {
          throw new RecorderError('CLI_USAGE', `button must be one of ${BUTTONS.join(', ')}, got ${button}`);
        }
        if (opts.long && opts.double)
          throw new RecorderError('CLI_USAGE', 'a press is --long or --double, not both');
        const kind: PressKind = opts.long ? 'long' : opts.double ? 'double' : 'short';
        const status = (await controlRequest(socketOf(opts.state), 'press', {
          button,
          kind,
        })) as RecorderStatus;
        if (opts.json) printJson(status);
        else process.stdout.write(`${statusLine(status)}\n`);
        return EXIT_OK;
      }),
    );

  device
    .command('status')
    .description('the status of the recorder running on --state')
    .requiredOption('--state <dir>', 'the state directory of the running recorder')
    .option('--json', 'print JSON')
    .action((opts: { state: string; json?: boolean }) =>
      run(async () => {
        const status = (await controlRequest(socketOf(opts.state), 'status')) as RecorderStatus;
        if (opts.json) printJson(status);
        else process.stdout.write(`${statusLine(status)}\n`);
        return EXIT_OK;
      }),
    );

  for (const [name, what] of [
    ['dock', 'plug the recorder into the station: external power, uploads when a gateway is reachable'],
    ['undock', 'unplug the recorder from the station'],
  ] as const) {
    device
      .command(name)
      .description(what)
      .requiredOption('--state <dir>', 'the state directory of the running recorder')
      .action((opts: { state: string }) =>
        run(async () => {
          const status = (await controlRequest(socketOf(opts.state), name)) as RecorderStatus;
          process.stdout.write(`${statusLine(status)}\n`);
          return EXIT_OK;
        }),
      );
  }
  return device;
}

/** `--gnss-replay FILE`: the simulated receiver replays a real log at its own pace, looping. */
export function simGnssOptions(file: string | undefined): { simGnss?: { file: string; loop: boolean } } {
  if (!file) return {};
  if (!existsSync(file)) throw new RecorderError('FILE_NOT_FOUND', `--gnss-replay ${file} does not exist`);
  return { simGnss: { file: resolve(file), loop: true } };
}

function socketOf(state: string): string {
  return statePaths(resolve(state)).controlSocket;
}

interface RunOptions {
  profile?: string;
  state: string;
  allowDiskSpool?: boolean;
  gnssReplay?: string;
}

async function runDevice(opts: RunOptions): Promise<number> {
  const profile = opts.profile ? loadProfileFile(opts.profile) : profileInForce(opts.state);
  const log = (line: string) => process.stdout.write(`${line}\n`);
  await checkEncoderElement(profile.capture.encoder);
  const hardware = await createHardware(profile.hardware, { log, ...simGnssOptions(opts.gnssReplay) });
  const recorder = await Recorder.start({
    profile,
    stateDir: resolve(opts.state),
    hardware: { ...hardware, storage: createStorage(profile.storage.evidenceDir) },
    requireRamSpool: !opts.allowDiskSpool,
  });
  recorder.on('log', (message: string) => log(`rec:device ${message}`));
  recorder.on('profile', (p: Profile) =>
    log(`rec:device profile version ${p.version} in force (network); officer ${p.officers[0]}`),
  );
  recorder.on('journal', (kind: string) => {
    if (kind === 'state' || kind === 'mark' || kind === 'record-refused' || kind === 'storage') {
      log(`rec:device ${statusLine(recorder.status())}`);
    }
  });
  const control = await ControlServer.listen(
    statePaths(resolve(opts.state)).controlSocket,
    async (cmd, args) => {
      switch (cmd) {
        case 'press':
          await recorder.press(args.button as ButtonName, (args.kind as PressKind) ?? 'short');
          return recorder.status();
        case 'status':
          return recorder.status();
        case 'dock':
          await recorder.dock();
          return recorder.status();
        case 'undock':
          await recorder.undock();
          return recorder.status();
        default:
          throw new RecorderError('CONTROL_BAD_REQUEST', `unknown command ${cmd}`);
      }
    },
  );
  log(
    `rec:device running ${profile.unit}/${profile.device} v${profile.version}; state ${resolve(opts.state)}`,
  );
  if (recorder.recovered) log(`rec:device recovered ${recorder.recovered} spool file(s) left by a crash`);
  log(`rec:device ${statusLine(recorder.status())}`);
  await new Promise<void>((done) => {
    const stop = (signal: string) => {
      log(`rec:device ${signal}: finalizing the open segment`);
      done();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await control.close();
  await recorder.stop();
  log('rec:device stopped cleanly');
  return EXIT_OK;
}

/**
 * The signed profile a provisioned device holds (issue 7): verified against the pinned unit CA when
 * it was applied (ProfileStore), read as it is now.
 */
function profileInForce(state: string): Profile {
  const paths = statePaths(resolve(state));
  if (!existsSync(paths.profile)) {
    throw new RecorderError(
      'PROFILE_NONE',
      `${state} holds no signed profile in force; provision the device (recorder flash) or give --profile FILE`,
    );
  }
  return parseProfile((JSON.parse(readFileSync(paths.profile, 'utf8')) as { profile: unknown }).profile);
}

/** One line a person reads at a glance. */
export function statusLine(s: RecorderStatus): string {
  const mode = s.state === 'recording' ? (s.audioOnly ? 'REC AUDIO' : 'REC') : s.state.toUpperCase();
  const battery =
    s.battery?.capacity !== null && s.battery?.capacity !== undefined
      ? `${Math.round(s.battery.capacity)}%`
      : '?';
  const minutes = s.battery?.minutesLeft ? ` (${Math.round(s.battery.minutesLeft)} min)` : '';
  const free =
    s.storage.freeBytes !== null ? `${Math.floor(s.storage.freeBytes / 1024 ** 3)} GiB free` : '? free';
  const fix =
    s.gnss && s.gnss.mode >= 2 && s.gnss.lat !== null
      ? `${s.gnss.lat.toFixed(5)},${s.gnss.lon?.toFixed(5)}`
      : 'NO FIX';
  return [
    `${s.device} ${mode}${s.event ? ` ${s.event}${s.marks ? ` marks:${s.marks}` : ''}` : ''}`,
    `officer ${s.officer}`,
    `battery ${battery}${minutes}`,
    `storage ${s.storage.level} ${free}`,
    `gnss ${fix}`,
    `clock ${s.clock.trusted ? 'ok' : 'UNSET'}`,
    `sealed ${s.segments.sealed}`,
    `uploads pending ${s.pendingUploads.count}${s.pendingUploads.marked ? ` (${s.pendingUploads.marked} marked)` : ''}${s.uploads && !s.uploads.enabled ? ' (uploads off)' : s.uploads?.active ? ' (uploading)' : ''}`,
    s.docked ? 'DOCKED' : '',
    s.fault ? `FAULT ${s.fault}` : '',
  ]
    .filter(Boolean)
    .join(' | ');
}
