import type { Command } from 'commander';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { verifyJournalFile } from '../../device/journal-reader.ts';
import { JournalWriter } from '../../device/journal-writer.ts';
import { loadOrCreateSigningKey } from '../../device/keys.ts';
import { statePaths } from '../../device/state-paths.ts';
import { EXIT_OK, EXIT_PROBLEMS } from '../output.ts';
import { printReport } from './journal.ts';

export function registerDemo(program: Command, run: (action: () => Promise<number>) => Promise<void>): void {
  program
    .command('demo')
    .description('run a simulated recorder: journal a short shift, then verify it')
    .option('--state <dir>', 'keep the state directory here (default: a new throwaway directory)')
    .option('--device <id>', 'device number', 'HN-CS-0001')
    .action((opts: { state?: string; device: string }) => run(() => demo(opts)));
}

async function demo(opts: { state?: string; device: string }): Promise<number> {
  const root = opts.state ? resolve(opts.state) : mkdtempSync(join(tmpdir(), 'recorder-demo-'));
  mkdirSync(root, { recursive: true });
  const paths = statePaths(root);
  const key = loadOrCreateSigningKey(paths.privateKey, paths.publicKey);
  const say = (text: string) => process.stdout.write(`${text}\n`);
  say(`state directory: ${root}`);
  say(
    `device ${opts.device}, signing key ${key.fingerprint.slice(0, 16)}… ${key.created ? '(new)' : '(existing)'}`,
  );

  const journal = await JournalWriter.open({
    path: paths.journal,
    device: opts.device,
    privateKey: key.privateKey,
  });
  const events: [string, Record<string, string | number | boolean>][] = [
    ['power-on', { firmware: '0.1.0', reason: 'demo' }],
    ['officer-assigned', { officer: 'HN-0427' }],
    ['button', { button: 'record', press: 'short' }],
    ['record-start', { event: 'demo-event', prerecordSeconds: 30 }],
    ['button', { button: 'mark', press: 'short' }],
    ['mark', { event: 'demo-event', note: 'seized goods photographed' }],
    ['button', { button: 'record', press: 'long' }],
    ['record-stop', { event: 'demo-event' }],
    ['power-off', { reason: 'demo' }],
  ];
  for (const [kind, body] of events) {
    const entry = await journal.append(kind, body);
    say(`  #${entry.seq} ${entry.time} ${kind}`);
  }
  await journal.close();

  const report = await verifyJournalFile(paths.journal, { publicKey: key.publicKey });
  printReport(paths.journal, report);
  say(`check it yourself: recorder journal verify ${paths.journal} --pubkey ${paths.publicKey}`);
  return report.ok ? EXIT_OK : EXIT_PROBLEMS;
}
