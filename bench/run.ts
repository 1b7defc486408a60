/**
 * Runs every benchmark module in bench/ (each exports `bench(args)` returning rows) and prints the
 * rows. `npm run bench -- --only capture --seconds 20` runs one module with its flags.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

export interface BenchRow {
  what: string;
  figure: string;
  baseline?: string;
  note?: string;
}

type BenchModule = { bench?: (args: string[]) => Promise<BenchRow[]> };

const dir = fileURLToPath(new URL('.', import.meta.url));
const args = process.argv.slice(2);
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined;

const files = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.d.ts'))
  .filter((f) => !only || f === `${only}.ts`)
  .sort();
let failed = false;
for (const file of files) {
  const mod = (await import(pathToFileURL(join(dir, file)).href)) as BenchModule;
  if (typeof mod.bench !== 'function') continue;
  console.log(`\n## ${file}`);
  try {
    const rows = await mod.bench(args);
    for (const row of rows) {
      console.log(`| ${row.what} | ${row.figure} | ${row.baseline ?? ''} | ${row.note ?? ''} |`);
    }
  } catch (error) {
    failed = true;
    console.error(`${file} failed: ${(error as Error).stack ?? String(error)}`);
  }
}
process.exitCode = failed ? 1 : 0;
