/**
 * `npm run bench [-- NAME…]`: imports every bench module in this folder (or the ones named) and
 * prints its rows. A module exports `bench(): Promise<BenchRow[]>`; each row is a figure measured
 * against a baseline in the same run, so the ratio holds on any machine.
 */
import { readdirSync } from 'node:fs';
import { loadavg } from 'node:os';

export interface BenchRow {
  what: string;
  /** the measured figure, with unit */
  figure: string;
  /** the baseline measured in the same run, with unit */
  baseline: string;
  /** figure relative to the baseline (higher is better), when there is one */
  ratio?: number;
  /** the goal for `ratio`, e.g. `≥ 0.7` */
  goal?: string;
}

const here = new URL('.', import.meta.url);
const wanted = process.argv.slice(2);
const modules = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.ts$/, '')))
  .sort();

process.stdout.write(
  `load average before: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}\n`,
);
for (const file of modules) {
  const mod = (await import(new URL(file, here).href)) as { bench?: () => Promise<BenchRow[]> };
  if (typeof mod.bench !== 'function') continue;
  process.stdout.write(`\n## ${file}\n`);
  for (const row of await mod.bench()) {
    const ratio =
      row.ratio === undefined
        ? ''
        : ` → ratio ${row.ratio.toFixed(2)}${row.goal ? ` (goal ${row.goal})` : ''}`;
    process.stdout.write(`${row.what}: ${row.figure} vs ${row.baseline}${ratio}\n`);
  }
}
process.stdout.write(
  `\nload average after: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}\n`,
);
