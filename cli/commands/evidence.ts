/**
 * `recorder evidence list|show|verify --config GATEWAY.json` (issue 6 item 5): the evidence store
 * of a station or a center, read next to a running gateway (SQLite WAL lets both in).
 */
import type { Command } from 'commander';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadGatewayConfig, type GatewayConfig } from '../../gateway/config.ts';
import { EvidenceStore, type ItemFilter, type StoredItem } from '../../gateway/evidence-store.ts';
import { admittedCas } from '../../gateway/device-certificate.ts';
import { verifyStore } from '../../gateway/evidence-verify.ts';
import { RecorderError } from '../../protocol/errors.ts';
import { EXIT_OK, EXIT_PROBLEMS, printJson } from '../output.ts';

type Run = (action: () => Promise<number>) => Promise<void>;

function openStore(configPath: string): { config: GatewayConfig; store: EvidenceStore } {
  const config = loadGatewayConfig(resolve(configPath));
  // Never create an empty store by looking: a wrong --config is an error, not "no items".
  if (!existsSync(join(config.evidence.dir, 'index.sqlite'))) {
    throw new RecorderError(
      'FILE_NOT_FOUND',
      `no evidence store at ${config.evidence.dir} (evidence.dir of ${configPath})`,
      { dir: config.evidence.dir },
    );
  }
  return { config, store: new EvidenceStore(config.evidence.dir) };
}

function readKey(path: string, what: string, half: 'private' | 'public'): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch {
    throw new RecorderError('FILE_NOT_FOUND', `cannot read ${what} ${path}`, { path });
  }
  try {
    return half === 'private' ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem);
  } catch (error) {
    throw new RecorderError('KEY_INVALID', `${what} ${path} is not a key: ${(error as Error).message}`);
  }
}

function isoTime(text: string | undefined, flag: string): string | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new RecorderError('CLI_USAGE', `${flag} must be an ISO 8601 time, got ${text}`);
  // The index holds toISOString() times: compare like with like.
  return new Date(ms).toISOString();
}

function status(store: EvidenceStore, item: StoredItem): Record<string, unknown> {
  const life = store.lifecycle(item.device, item.id)!;
  return {
    receipted: item.receipt !== null,
    ingestCheck: life.ingest,
    relayedAt: life.relayedAt,
    relayError: life.relayError,
    purgedAt: life.purgedAt,
  };
}

function summary(store: EvidenceStore, item: StoredItem): Record<string, unknown> {
  const { entryLine: _line, receipt: _receipt, positions, ...fields } = item;
  return { ...fields, positions: JSON.parse(positions) as unknown, ...status(store, item) };
}

function state(store: EvidenceStore, item: StoredItem): string {
  const life = store.lifecycle(item.device, item.id)!;
  if (life.purgedAt) return 'relayed, purged';
  if (life.relayedAt) return 'relayed';
  if (life.ingest) return life.ingest.ok ? 'stored, plaintext ok' : 'stored, PLAINTEXT FAILED';
  if (life.relayError) return 'stored, relay failing';
  return item.receipt ? 'receipted' : 'stored';
}

export function registerEvidence(program: Command, run: Run): void {
  const evidence = program
    .command('evidence')
    .description('the evidence store of a station or a center: list, show, verify');
  evidence
    .command('list')
    .description('list stored items, oldest first')
    .requiredOption('--config <file>', 'the gateway configuration')
    .option('--unit <unit>', 'only this unit (a center holds the items of several)')
    .option('--device <id>', 'only this device')
    .option('--from <time>', 'only items ending at or after this ISO time')
    .option('--to <time>', 'only items starting at or before this ISO time')
    .option('--json', 'one JSON object per line')
    .action(
      (opts: {
        config: string;
        unit?: string;
        device?: string;
        from?: string;
        to?: string;
        json?: boolean;
      }) =>
        run(async () => {
          const filter: ItemFilter = {};
          if (opts.unit) filter.unit = opts.unit;
          if (opts.device) filter.device = opts.device;
          const from = isoTime(opts.from, '--from');
          const to = isoTime(opts.to, '--to');
          if (from) filter.from = from;
          if (to) filter.to = to;
          const { store } = openStore(opts.config);
          try {
            const items = store.list(filter);
            if (opts.json) {
              for (const item of items) process.stdout.write(`${JSON.stringify(summary(store, item))}\n`);
              return EXIT_OK;
            }
            // A UNIT column when the items are of several units (a center).
            const units = new Set(items.map((i) => i.unit)).size > 1;
            const rows = items.map((i) => [
              ...(units ? [i.unit] : []),
              i.device,
              i.id,
              i.kind,
              i.officer ?? '-',
              i.start ?? '-',
              i.end ?? '-',
              String(i.bytes),
              state(store, i),
            ]);
            const head = [
              ...(units ? ['UNIT'] : []),
              'DEVICE',
              'ID',
              'KIND',
              'OFFICER',
              'START',
              'END',
              'BYTES',
              'STATE',
            ];
            const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
            for (const row of [head, ...rows])
              process.stdout.write(
                `${row
                  .map((v, c) => v.padEnd(widths[c]!))
                  .join('  ')
                  .trimEnd()}\n`,
              );
            process.stdout.write(`${items.length} item(s)\n`);
            return EXIT_OK;
          } finally {
            store.close();
          }
        }),
    );
  evidence
    .command('show')
    .description('every indexed field of one item, its receipts, relay status and ingest check (JSON)')
    .argument('<id>', 'the item id (the evidence file name)')
    .requiredOption('--config <file>', 'the gateway configuration')
    .option('--device <id>', 'the device, when several devices have an item of that name')
    .action((id: string, opts: { config: string; device?: string }) =>
      run(async () => {
        const { store } = openStore(opts.config);
        try {
          const matches = store
            .list(opts.device ? { device: opts.device } : {})
            .filter((item) => item.id === id);
          if (matches.length === 0)
            throw new RecorderError('FILE_NOT_FOUND', `no item ${id} in the store`, { id });
          if (matches.length > 1) {
            throw new RecorderError(
              'CLI_USAGE',
              `${matches.length} devices have an item ${id}: give --device (${matches.map((m) => m.device).join(', ')})`,
            );
          }
          const item = matches[0]!;
          const life = store.lifecycle(item.device, item.id)!;
          printJson({
            ...item,
            entry: JSON.parse(item.entryLine) as unknown,
            positions: JSON.parse(item.positions) as unknown,
            receipt: item.receipt ? (JSON.parse(item.receipt) as unknown) : null,
            ingestCheck: life.ingest,
            relay: {
              relayedAt: life.relayedAt,
              centerReceipt: life.centerReceipt ? (JSON.parse(life.centerReceipt) as unknown) : null,
              error: life.relayError,
              purgedAt: life.purgedAt,
            },
            object: life.purgedAt ? null : store.objectPath(item.sha256),
          });
          return EXIT_OK;
        } finally {
          store.close();
        }
      }),
    );
  evidence
    .command('verify')
    .description(
      're-hash every stored object, check it is read-only, check every device journal chain and every receipt',
    )
    .requiredOption('--config <file>', 'the gateway configuration')
    .option('--json', 'print {ok, items, problems:[{code, device, id, message}]}')
    .action((opts: { config: string; json?: boolean }) =>
      run(async () => {
        const { config, store } = openStore(opts.config);
        try {
          const receiptKey = existsSync(config.evidence.receiptKey)
            ? readKey(config.evidence.receiptKey, 'the receipt key', 'private')
            : undefined;
          const centerReceiptKey = config.upstream
            ? readKey(config.upstream.receiptKey, "the center's receipt key", 'public')
            : undefined;
          if (!receiptKey && store.list({ limit: 1 }).some((i) => i.receipt)) {
            throw new RecorderError(
              'FILE_NOT_FOUND',
              `receipts are stored but the receipt key ${config.evidence.receiptKey} is missing`,
            );
          }
          const report = await verifyStore(store, {
            role: config.evidence.role,
            ...(receiptKey ? { receiptKey } : {}),
            ...(centerReceiptKey ? { centerReceiptKey } : {}),
            unitCas: admittedCas(config),
          });
          if (opts.json) printJson(report);
          else {
            process.stdout.write(
              `${config.evidence.dir}: ${report.ok ? 'OK' : 'FAILED'}, ${report.items} item(s), ` +
                `${report.devices} device journal(s), ${report.journalLines} line(s), ${report.problems.length} problem(s)\n`,
            );
            for (const p of report.problems)
              process.stdout.write(`  ${p.code} ${p.device ?? '-'} ${p.id ?? '-'}: ${p.message}\n`);
          }
          return report.ok ? EXIT_OK : EXIT_PROBLEMS;
        } finally {
          store.close();
        }
      }),
    );
}
