import type { Command } from 'commander';
import { verifyJournalFile } from '../../device/journal-reader.ts';
import { loadPublicKey } from '../../device/keys.ts';
import { RecorderError } from '../../protocol/errors.ts';
import type { ChainReport } from '../../protocol/journal-chain.ts';
import { EXIT_OK, EXIT_PROBLEMS, printJson } from '../output.ts';

export function registerJournal(
  program: Command,
  run: (action: () => Promise<number>) => Promise<void>,
): void {
  const journal = program.command('journal').description('inspect and verify signed, hash-chained journals');
  journal
    .command('verify')
    .description('verify every line of a journal: JSON, canonical form, signature, chain, sequence, time')
    .argument('<file>', 'the journal (JSON Lines)')
    .requiredOption('--pubkey <pem>', "the device's Ed25519 public key (PEM)")
    .option(
      '--known-head <seq:hash>',
      'a head known from elsewhere (a receipt): detects lines cut off at the end',
    )
    .option('--time-tolerance <ms>', 'how far time may step back between entries', '2000')
    .option('--json', 'print {ok, entries, problems:[{line, code, message}]}')
    .action(
      (file: string, opts: { pubkey: string; knownHead?: string; timeTolerance: string; json?: boolean }) =>
        run(async () => {
          const report = await verifyJournalFile(file, {
            publicKey: loadPublicKey(opts.pubkey),
            timeToleranceMs: parseNonNegative(opts.timeTolerance, '--time-tolerance'),
            ...(opts.knownHead ? { knownHead: parseKnownHead(opts.knownHead) } : {}),
          });
          if (opts.json) printJson({ ok: report.ok, entries: report.entries, problems: report.problems });
          else printReport(file, report);
          return report.ok ? EXIT_OK : EXIT_PROBLEMS;
        }),
    );
}

export function printReport(file: string, report: ChainReport): void {
  if (report.ok) {
    process.stdout.write(`${file}: OK, ${report.entries} entries, chain intact\n`);
    return;
  }
  process.stdout.write(`${file}: FAILED, ${report.entries} entries, ${report.problems.length} problem(s)\n`);
  for (const p of report.problems) process.stdout.write(`  line ${p.line}: ${p.code} ${p.message}\n`);
}

function parseKnownHead(text: string): { seq: number; hash: string } {
  const match = /^(\d+):([0-9a-f]{64})$/.exec(text);
  if (!match) throw new RecorderError('CLI_USAGE', `--known-head must be SEQ:HEX64, got ${text}`);
  return { seq: Number(match[1]), hash: match[2]! };
}

export function parseNonNegative(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0)
    throw new RecorderError('CLI_USAGE', `${flag} must be a non-negative number, got ${text}`);
  return n;
}
