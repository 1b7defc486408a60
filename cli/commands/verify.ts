import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadPrivateKey } from '../../device/keys.ts';
import { decryptState, verifyState, type VerifyProblem } from '../../device/sealing/verify-state.ts';
import { EXIT_OK, EXIT_PROBLEMS, printJson } from '../output.ts';

type Run = (action: () => Promise<number>) => Promise<void>;

export function registerVerify(program: Command, run: Run): void {
  program
    .command('verify')
    .description(
      "verify a device's journal and every evidence file; with the center key also decrypt, hash and demux each",
    )
    .requiredOption('--state <dir>', 'the device state directory')
    .option('--center-key <pem>', "the evidence center's RSA private key (PEM, mode 0600)")
    .option(
      '--evidence <dir>',
      "evidence dir (default: the profile's, recorded in the state, else STATE/evidence)",
    )
    .option('--json', 'print {ok, entries, segments, decrypted, problems:[{code, message, file?, line?}]}')
    .action((opts: { state: string; centerKey?: string; evidence?: string; json?: boolean }) =>
      run(async () => {
        const report = await verifyState(resolve(opts.state), {
          ...(opts.centerKey ? { centerPrivateKey: loadPrivateKey(opts.centerKey) } : {}),
          ...(opts.evidence ? { evidenceDir: resolve(opts.evidence) } : {}),
        });
        if (opts.json) printJson(report);
        else {
          const what =
            `${report.entries} journal entries, ${report.segments} sealed items` +
            (opts.centerKey ? `, ${report.decrypted} decrypted, hashed and demuxed` : '');
          process.stdout.write(`${opts.state}: ${report.ok ? 'OK' : 'FAILED'}, ${what}\n`);
          printProblems(report.problems);
        }
        return report.ok ? EXIT_OK : EXIT_PROBLEMS;
      }),
    );

  program
    .command('decrypt')
    .description('write the plaintext media of every sealed segment and photo (needs the center private key)')
    .requiredOption('--state <dir>', 'the device state directory')
    .requiredOption('--center-key <pem>', "the evidence center's RSA private key (PEM, mode 0600)")
    .requiredOption('--out <dir>', 'where to write the media files')
    .option('--evidence <dir>', 'evidence dir (default as for verify)')
    .action((opts: { state: string; centerKey: string; out: string; evidence?: string }) =>
      run(async () => {
        const report = await decryptState(
          resolve(opts.state),
          loadPrivateKey(opts.centerKey),
          resolve(opts.out),
          {
            ...(opts.evidence ? { evidenceDir: resolve(opts.evidence) } : {}),
          },
        );
        for (const file of report.written) process.stdout.write(`${file}\n`);
        process.stdout.write(`${report.written.length} file(s) written to ${opts.out}\n`);
        printProblems(report.problems);
        return report.problems.length === 0 ? EXIT_OK : EXIT_PROBLEMS;
      }),
    );
}

function printProblems(problems: VerifyProblem[]): void {
  for (const p of problems) {
    const where = [p.file, p.line === undefined ? undefined : `journal line ${p.line}`]
      .filter(Boolean)
      .join(', ');
    process.stdout.write(`  ${p.code}${where ? ` (${where})` : ''}: ${p.message}\n`);
  }
}
