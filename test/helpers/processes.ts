/** What /proc says about the processes a test started. */
import { readFileSync, readdirSync } from 'node:fs';

/** A zombie counts as gone: it runs nothing, and no reaper may be there to collect it. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

/** The command line of a process, or null once it is gone. */
export function commandLine(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return null;
  }
}

/** Live processes other than this one whose command line names `text` (a test's temp dir). */
export function processesNaming(text: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    if (commandLine(Number(name))?.join('\0').includes(text) && alive(Number(name))) found.push(Number(name));
  }
  return found;
}
