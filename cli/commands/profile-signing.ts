/**
 * `recorder profile sign` and `recorder profile verify` (issue 7, item 1). Registered on the
 * `profile` command whether or not another area created it first (issue 3 adds init/check).
 */
import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { RecorderError } from '../../protocol/errors.ts';
import { encodeSignedProfile, signProfile, verifySignedProfile } from '../../protocol/signed-profile.ts';
import { EXIT_OK, EXIT_PROBLEMS, printJson } from '../output.ts';
import { caDirFiles, readCaFile } from '../unit-ca.ts';

export function subcommand(program: Command, name: string, description: string): Command {
  return program.commands.find((c) => c.name() === name) ?? program.command(name).description(description);
}

export function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    throw new RecorderError('FILE_NOT_FOUND', `${what} ${path} does not exist`, { path });
  }
}

export function registerProfileSigning(
  program: Command,
  run: (action: () => Promise<number>) => Promise<void>,
): void {
  const profile = subcommand(program, 'profile', 'device profiles: check, sign, verify');
  profile
    .command('sign')
    .description("sign a device profile with the unit's profile-signing certificate")
    .argument('<file>', 'the profile (JSON)')
    .requiredOption('--ca <dir>', 'unit CA directory (profile-signer.cert.pem, profile-signer.key.pem)')
    .requiredOption('--out <file>', 'where to write the signed profile')
    .action((file: string, opts: { ca: string; out: string }) =>
      run(async () => {
        let value: unknown;
        try {
          value = JSON.parse(readInput(file, 'profile').toString('utf8'));
        } catch (error) {
          if (error instanceof RecorderError) throw error;
          throw new RecorderError('PROFILE_INVALID', `${file} is not JSON: ${(error as Error).message}`);
        }
        const files = caDirFiles(opts.ca);
        const doc = signProfile(value, {
          keyPem: readCaFile(files.signerKey),
          certPem: readCaFile(files.signerCert),
        });
        writeFileSync(opts.out, encodeSignedProfile(doc));
        process.stdout.write(
          `${opts.out}: profile for ${doc.profile.device} version ${doc.profile.version} signed (${doc.signature.alg})\n`,
        );
        return EXIT_OK;
      }),
    );
  profile
    .command('verify')
    .description('check a signed profile as a device would: signature chain, device, version, schema, size')
    .argument('<file>', 'the signed profile')
    .requiredOption('--ca <cert>', 'the unit CA certificate (PEM) the device pins')
    .option('--device <number>', 'the device that must be named')
    .option('--current-version <n>', 'the version in force; the profile must be higher')
    .option('--json', 'print the verdict as JSON')
    .action((file: string, opts: { ca: string; device?: string; currentVersion?: string; json?: boolean }) =>
      run(async () => {
        const current = opts.currentVersion === undefined ? undefined : Number(opts.currentVersion);
        if (current !== undefined && !Number.isSafeInteger(current)) {
          throw new RecorderError(
            'CLI_USAGE',
            `--current-version must be an integer, got ${opts.currentVersion}`,
          );
        }
        const verdict = verifySignedProfile(readInput(file, 'signed profile'), {
          caCertPem: readCaFile(opts.ca),
          ...(opts.device ? { device: opts.device } : {}),
          ...(current !== undefined ? { currentVersion: current } : {}),
        });
        if (opts.json) {
          printJson(
            verdict.ok
              ? {
                  ok: true,
                  device: verdict.profile.device,
                  version: verdict.profile.version,
                  signer: verdict.signer,
                }
              : verdict,
          );
        } else if (verdict.ok) {
          process.stdout.write(
            `${file}: OK, profile for ${verdict.profile.device} version ${verdict.profile.version}, ` +
              `signed by ${verdict.signer.subject.replace(/\n/g, ', ')}\n`,
          );
        } else {
          process.stdout.write(`${file}: REFUSED ${verdict.code}: ${verdict.message}\n`);
        }
        return verdict.ok ? EXIT_OK : EXIT_PROBLEMS;
      }),
    );
}
