/**
 * `npm run bench [-- NAME…] [--flag value…]`: imports every bench module in this folder (or the
 * ones named) and prints its rows. A module exports `bench(args): Promise<BenchRow[]>`; each row
 * is a figure measured against a baseline in the same run, so the ratio holds on any machine.
 * Flags go to every module (e.g. `npm run bench -- capture --seconds 20`).
 */
import { readdirSync } from 'node:fs';
import { loadavg } from 'node:os';

export interface BenchRow {
  what: string;
  /** the measured figure, with unit */
  figure: string;
  /** the baseline measured in the same run, with unit */
  baseline?: string;
  /** figure relative to the baseline (higher is better), when there is one */
  ratio?: number;
  /** the goal for `ratio`, e.g. `≥ 0.7` */
  goal?: string;
  note?: string;
}

type BenchFn = (args: string[]) => Promise<unknown[]>;
/** A bench module exports `bench(args)` (or a default function, or `run(argv)`); a plain script prints on import. */
type BenchModule = { bench?: BenchFn; default?: BenchFn; run?: BenchFn };

const here = new URL('.', import.meta.url);
const args = process.argv.slice(2);
// Positional words before the first flag name modules; the rest are flags for the modules.
const firstFlag = args.findIndex((a) => a.startsWith('--'));
const wanted = (firstFlag < 0 ? args : args.slice(0, firstFlag)).map((a) => a.replace(/\.ts$/, ''));
const flags = firstFlag < 0 ? [] : args.slice(firstFlag);
const onlyAt = flags.indexOf('--only');
if (onlyAt >= 0 && flags[onlyAt + 1]) wanted.push(flags[onlyAt + 1]!);
const modules = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.d.ts') && !f.endsWith('-child.ts'))
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.ts$/, '')))
  .sort();

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
process.stdout.write(`load average before: ${load()}\n`);
let failed = false;
for (const file of modules) {
  process.stdout.write(`\n## ${file}\n`);
  try {
    const mod = (await import(new URL(file, here).href)) as BenchModule;
    const fn = mod.bench ?? mod.default ?? mod.run;
    if (typeof fn !== 'function') continue;
    for (const result of await fn(flags)) {
      if (!isRow(result)) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        continue;
      }
      const row = result;
      const ratio =
        row.ratio === undefined
          ? ''
          : ` → ratio ${row.ratio.toFixed(2)}${row.goal ? ` (goal ${row.goal})` : ''}`;
      const baseline = row.baseline ? ` vs ${row.baseline}` : '';
      const note = row.note ? ` (${row.note})` : '';
      process.stdout.write(`${row.what}: ${row.figure}${baseline}${ratio}${note}\n`);
    }
  } catch (error) {
    failed = true;
    process.stderr.write(`${file} failed: ${(error as Error).stack ?? String(error)}\n`);
  }
}
process.stdout.write(`\nload average after: ${load()}\n`);
process.exitCode = failed ? 1 : 0;

function isRow(value: unknown): value is BenchRow {
  return typeof value === 'object' && value !== null && 'what' in value && 'figure' in value;
}
