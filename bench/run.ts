/**
 * `npm run bench`: imports every benchmark module in bench/ (each default-exports an async
 * function returning rows) and prints their results. Pass names to run only some:
 * `npm run bench -- serial-flash`.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Row {
  name: string;
  value: number;
  unit: string;
  goal?: string;
  note?: string;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
const modules = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();
let failed = false;
for (const file of modules) {
  const mod = (await import(new URL(file, import.meta.url).href)) as { default?: () => Promise<Row[]> };
  if (typeof mod.default !== 'function') continue;
  process.stdout.write(`# ${file}\n`);
  try {
    for (const r of await mod.default()) {
      const goal = r.goal ? ` (goal ${r.goal})` : '';
      const note = r.note ? ` — ${r.note}` : '';
      process.stdout.write(`${r.name}: ${r.value} ${r.unit}${goal}${note}\n`);
    }
  } catch (error) {
    failed = true;
    process.stdout.write(`${file} failed: ${(error as Error).stack ?? String(error)}\n`);
  }
}
process.exitCode = failed ? 1 : 0;
