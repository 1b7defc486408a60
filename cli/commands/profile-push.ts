/**
 * `recorder profile push SIGNED.json --gateway CONFIG` and
 * `recorder device assign DEVICE --officer ID --gateway CONFIG` (issue 7 item 4).
 * Exit codes: 0 the device applied it (or already had it), 1 refused (by this command's own
 * check, the gateway or the device, with the reason), 2 could not run or the device did not answer
 * (the profile stays retained and is applied when the device connects).
 */
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { RecorderError } from '../../protocol/errors.ts';
import { EXIT_OK, EXIT_PROBLEMS, printError, printJson } from '../output.ts';
import {
  assignOfficer,
  parseDuration,
  pushProfile,
  type PushOptions,
  type PushOutcome,
} from '../profile-push.ts';
import { readInput, subcommand } from './profile-signing.ts';

type Run = (action: () => Promise<number>) => Promise<void>;

interface ConnectOpts {
  gateway: string;
  cert?: string;
  key?: string;
  url?: string;
  wait: string;
  json?: boolean;
}

function withConnectOptions(command: Command): Command {
  return command
    .requiredOption(
      '--gateway <config>',
      'the gateway configuration of the running gateway (recorder gateway init)',
    )
    .option('--cert <file>', "client certificate (technician or gateway role); default the gateway's own")
    .option('--key <file>', 'its private key')
    .option('--url <url>', 'the gateway, mqtts://HOST:PORT; default the listen address of the configuration')
    .option('--wait <duration>', "how long to wait for the device's answer", '30s')
    .option('--json', 'print the outcome as JSON');
}

function pushOptions(opts: ConnectOpts): PushOptions {
  return {
    config: opts.gateway,
    ...(opts.cert ? { cert: opts.cert } : {}),
    ...(opts.key ? { key: opts.key } : {}),
    ...(opts.url ? { url: opts.url } : {}),
    waitMs: parseDuration(opts.wait),
    note: (line) => process.stderr.write(`recorder: ${line}\n`),
  };
}

/** Prints the outcome and returns the exit code. */
function report(outcome: PushOutcome, json: boolean | undefined): number {
  if (json) printJson(outcome);
  switch (outcome.kind) {
    case 'answered': {
      const r = outcome.result;
      if (!json) {
        process.stdout.write(
          outcome.ok
            ? `${outcome.device}: profile version ${outcome.version} ${r.outcome === 'in-force' ? 'already in force' : 'applied'}` +
                `${r.officer ? `, officer ${r.officer}` : ''}` +
                `${r.restartNeeded?.length ? `; takes full effect after a restart (${r.restartNeeded.join(', ')})` : ''}\n`
            : `${outcome.device}: REFUSED by the device ${outcome.error?.code ?? ''}: ${outcome.error?.message ?? ''}` +
                `${r.inForce !== undefined ? ` (version ${r.inForce} stays in force)` : ''}\n`,
        );
      }
      return outcome.ok ? EXIT_OK : EXIT_PROBLEMS;
    }
    case 'refused':
      if (!json)
        process.stdout.write(`${outcome.device ?? 'profile'}: REFUSED ${outcome.code}: ${outcome.message}\n`);
      return EXIT_PROBLEMS;
    case 'no-answer':
      return printError(
        new RecorderError(
          'PROFILE_PUSH_NO_ANSWER',
          `${outcome.device} did not answer in time; profile version ${outcome.version} stays retained on ${outcome.topic} and is applied when the device connects`,
        ),
      );
  }
}

export function registerProfilePush(program: Command, run: Run): void {
  const profile = subcommand(program, 'profile', 'device profiles: check, sign, verify, push');
  withConnectOptions(
    profile
      .command('push')
      .description("publish a signed profile on the device's retained profile topic and wait for its answer")
      .argument('<signed>', 'the signed profile (recorder profile sign)'),
  ).action((file: string, opts: ConnectOpts) =>
    run(async () =>
      report(await pushProfile(readInput(file, 'signed profile'), pushOptions(opts)), opts.json),
    ),
  );

  const device = subcommand(program, 'device', 'run the recorder companion on a device');
  withConnectOptions(
    device
      .command('assign')
      .description(
        'assign an officer to a device: its profile with the officer first, version + 1, signed and pushed',
      )
      .argument('<device>', 'the device number')
      .requiredOption('--officer <id>', 'the officer number')
      .option(
        '--ca <dir>',
        'unit CA directory with the profile signer; default the CA directory of the configuration',
      )
      .option(
        '--profile <file>',
        'the current profile (signed or plain); default the last one pushed through the gateway',
      )
      .option('--out <file>', 'also write the new signed profile here'),
  ).action(
    (
      deviceId: string,
      opts: ConnectOpts & { officer: string; ca?: string; profile?: string; out?: string },
    ) =>
      run(async () => {
        const { bytes, profile: next } = assignOfficer({
          ...pushOptions(opts),
          device: deviceId,
          officer: opts.officer,
          ...(opts.ca ? { ca: opts.ca } : {}),
          ...(opts.profile ? { profile: opts.profile } : {}),
        });
        if (opts.out) writeFileSync(opts.out, bytes);
        process.stderr.write(
          `recorder: profile version ${next.version} for ${deviceId} signed: officers ${next.officers.join(', ')}\n`,
        );
        return report(await pushProfile(bytes, pushOptions(opts)), opts.json);
      }),
  );
}
