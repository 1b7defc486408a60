import type { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createCenterKeyPair } from '../../device/center-keys.ts';
import { buildSimProfile, checkEncoderElement, profileFileProblems } from '../../device/profile-file.ts';
import { RecorderError, isRecorderError } from '../../protocol/errors.ts';
import { ProfileSchema, parseProfile } from '../../protocol/schemas/profile.ts';
import { EXIT_OK, EXIT_PROBLEMS, printJson } from '../output.ts';

type Run = (action: () => Promise<number>) => Promise<void>;

interface InitOptions {
  gateway?: string;
  cert?: string;
  key?: string;
  ca?: string;
  receiptKey?: string;
  sim?: boolean;
  unit: string;
  device: string;
  officer: string[];
  centerPubkey: string;
  out: string;
  state?: string;
  force?: boolean;
  segmentSeconds?: string;
  prerecordSeconds?: string;
  postrecordSeconds?: string;
  width?: string;
  height?: string;
  fps?: string;
}

export function registerProfile(program: Command, run: Run): void {
  const profile = program.command('profile').description('create, check and describe device profiles');
  profile
    .command('init')
    .description('write a valid profile for a simulated recorder (videotestsrc, x264enc, simulated GPIO)')
    .option('--sim', 'a simulated recorder (the only kind init writes; boards start from profiles/examples)')
    .requiredOption('--unit <id>', 'enforcement unit code')
    .requiredOption('--device <id>', 'device number')
    .requiredOption('--officer <id...>', 'assigned officer number(s); the first is the default')
    .requiredOption('--center-pubkey <pem>', "the evidence center's RSA public key (PEM file)")
    .requiredOption('--out <file>', 'where to write the profile')
    .option(
      '--state <dir>',
      'state directory: evidence in DIR/evidence, plaintext spool in RAM',
      'recorder-state',
    )
    .option('--force', 'overwrite an existing --out file')
    .option('--gateway <url>', 'the station gateway, mqtts://HOST:PORT (with --cert, --key, --ca)')
    .option('--cert <pem>', "the device's TLS client certificate (recorder ca issue --role device)")
    .option('--key <pem>', 'its private key (mode 0600)')
    .option('--ca <pem>', 'the unit CA certificate the gateway must chain to')
    .option(
      '--receipt-key <pem>',
      "the gateway's receipt-signing public key (receipt.pub.pem from recorder gateway init): uploads on",
    )
    .option('--segment-seconds <n>', 'length of one sealed segment')
    .option('--prerecord-seconds <n>', 'seconds kept before a press (R2)')
    .option('--postrecord-seconds <n>', 'seconds kept after stop')
    .option('--width <px>', 'frame width')
    .option('--height <px>', 'frame height')
    .option('--fps <n>', 'frames per second')
    .action((opts: InitOptions) => run(async () => init(opts)));

  profile
    .command('check')
    .description('validate a profile: every problem at once, each naming its field')
    .argument('<file>', 'the profile (JSON)')
    .option(
      '--on-device',
      'also check what needs the board: the encoder element is installed (gst-inspect-1.0)',
    )
    .option('--json', 'print {ok, problems:[{path, message}]}')
    .action((file: string, opts: { onDevice?: boolean; json?: boolean }) =>
      run(async () => {
        const problems = profileFileProblems(file);
        if (opts.onDevice && !problems.some((p) => p.path === '/capture/encoder')) {
          const encoder = encoderOf(file);
          if (typeof encoder === 'string') {
            try {
              await checkEncoderElement(encoder);
            } catch (error) {
              if (!isRecorderError(error, 'PROFILE_ENCODER_UNKNOWN')) throw error;
              problems.push({
                path: '/capture/encoder',
                message: error.detail.replace(/^\/capture\/encoder: /, ''),
              });
            }
          }
        }
        if (opts.json) printJson({ ok: problems.length === 0, problems });
        else if (problems.length === 0) process.stdout.write(`${file}: OK\n`);
        else {
          process.stdout.write(`${file}: INVALID, ${problems.length} problem(s)\n`);
          for (const p of problems) process.stdout.write(`  ${p.path}: ${p.message}\n`);
        }
        return problems.length === 0 ? EXIT_OK : EXIT_PROBLEMS;
      }),
    );

  profile
    .command('schema')
    .description('print the profile JSON Schema')
    .action(() =>
      run(async () => {
        printJson(ProfileSchema);
        return EXIT_OK;
      }),
    );
}

export function registerKeysCenter(program: Command, run: Run): void {
  const keys =
    program.commands.find((c) => c.name() === 'keys') ?? program.command('keys').description('make keys');
  keys
    .command('center')
    .description('make an evidence-center RSA-3072 key pair (for simulation and tests)')
    .requiredOption('--out <dir>', 'directory for center.key.pem (0600) and center.pub.pem')
    .action((opts: { out: string }) =>
      run(async () => {
        const files = createCenterKeyPair(opts.out);
        process.stdout.write(
          `private key ${files.privateKey} (keep it at the center)\npublic key  ${files.publicKey}\n` +
            `fingerprint ${files.fingerprint}\n`,
        );
        return EXIT_OK;
      }),
    );
}

function init(opts: InitOptions): number {
  if (!opts.sim) {
    throw new RecorderError(
      'CLI_USAGE',
      'profile init writes simulated profiles only: pass --sim, or start a board profile from profiles/examples/',
    );
  }
  if (existsSync(opts.out) && !opts.force) {
    throw new RecorderError('CLI_USAGE', `${opts.out} exists; pass --force to overwrite it`, {
      path: opts.out,
    });
  }
  let pem: string;
  try {
    pem = readFileSync(opts.centerPubkey, 'utf8');
  } catch {
    throw new RecorderError('KEY_MISSING', `--center-pubkey ${opts.centerPubkey} does not exist`, {
      path: opts.centerPubkey,
    });
  }
  const number = (flag: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text))
      throw new RecorderError('CLI_USAGE', `--${flag} must be a whole number, got ${text}`);
    return Number(text);
  };
  const profile = buildSimProfile({
    unit: opts.unit,
    device: opts.device,
    officers: opts.officer,
    centerPublicKeyPem: pem,
    stateDir: opts.state ?? 'recorder-state',
    segmentSeconds: number('segment-seconds', opts.segmentSeconds),
    prerecordSeconds: number('prerecord-seconds', opts.prerecordSeconds),
    postrecordSeconds: number('postrecord-seconds', opts.postrecordSeconds),
    width: number('width', opts.width),
    height: number('height', opts.height),
    fps: number('fps', opts.fps),
  });
  const tls = [opts.cert, opts.key, opts.ca];
  if (opts.gateway ? tls.some((f) => !f) : tls.some(Boolean)) {
    throw new RecorderError('CLI_USAGE', '--gateway needs --cert, --key and --ca, and they need --gateway');
  }
  if (opts.receiptKey && !opts.gateway) throw new RecorderError('CLI_USAGE', '--receipt-key needs --gateway');
  const withGateway = opts.gateway
    ? parseProfile({
        ...profile,
        gateway: {
          url: opts.gateway,
          cert: resolve(opts.cert!),
          key: resolve(opts.key!),
          ca: resolve(opts.ca!),
          ...(opts.receiptKey ? { receiptKey: resolve(opts.receiptKey) } : {}),
        },
      })
    : profile;
  writeFileSync(opts.out, `${JSON.stringify(withGateway, null, 2)}\n`);
  process.stdout.write(
    `${opts.out}: simulated profile for ${profile.unit}/${profile.device}, evidence in ${profile.storage.evidenceDir}, ` +
      `spool in ${profile.storage.spoolDir}\n`,
  );
  return EXIT_OK;
}

function encoderOf(file: string): unknown {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { capture?: { encoder?: unknown } }).capture?.encoder;
  } catch {
    return undefined;
  }
}
