import type { ExecutionContext } from 'ava';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultSpoolDir } from '../../device/state-paths.ts';

/**
 * A fresh temporary directory, removed when the test ends, together with the RAM spools
 * (`/dev/shm/recorder-spool-*`) of any state directory made in it: a simulated recorder's spool
 * lives outside its state directory on purpose (plaintext stays in RAM), so it needs its own sweep.
 */
export function tempDir(t: ExecutionContext, prefix = 'recorder-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => {
    for (const candidate of directoriesBelow(dir, 3))
      rmSync(defaultSpoolDir(candidate), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function directoriesBelow(dir: string, depth: number): string[] {
  const found = [dir];
  if (depth === 0) return found;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries)
    if (entry.isDirectory()) found.push(...directoriesBelow(join(dir, entry.name), depth - 1));
  return found;
}
