/**
 * Runs a TypeScript child under `strace -f` (Debian package strace) and reads back its system
 * calls, for tests that must see fsync and rename happen in the right order on a real disk.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { reapWithWorker } from './child-reaper.ts';
import { needPrograms } from './system.ts';

export interface Syscall {
  name: string;
  args: string;
  result: string;
}

/** The system calls of an `strace -f` log, each whole again where strace split it between threads. */
export function parseStrace(log: string): Syscall[] {
  const pending = new Map<string, string>();
  const calls: Syscall[] = [];
  for (const line of log.split('\n')) {
    const m = /^(\d+) +(.*)$/.exec(line);
    if (!m) continue;
    const [, pid, rest] = m as unknown as [string, string, string];
    if (rest.endsWith(' <unfinished ...>')) {
      pending.set(pid, rest.slice(0, -' <unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    const whole = resumed ? `${pending.get(pid) ?? ''}${resumed[1]}` : rest;
    pending.delete(pid);
    const call = /^(\w+)\((.*)\) += (-?\w+)/.exec(whole);
    if (call) calls.push({ name: call[1]!, args: call[2]!, result: call[3]! });
  }
  return calls;
}

/**
 * Runs `node --import=tsx script ...args` under strace, tracing the file calls that durability
 * depends on; resolves with the exit code, stderr and the calls. Throws naming the package when
 * strace is missing.
 */
export async function traceChild(
  script: string,
  args: string[],
  log: string,
): Promise<{ code: number | null; stderr: string; calls: Syscall[] }> {
  needPrograms('strace');
  const child = reapWithWorker(
    spawn(
      'strace',
      [
        '-f',
        '-qq',
        '-s',
        '4096',
        '-o',
        log,
        '-e',
        'trace=open,openat,close,fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat',
        process.execPath,
        '--import=tsx',
        script,
        ...args,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    ),
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stderr, calls: parseStrace(readFileSync(log, 'utf8')) };
}

/** The paths a call names, in order. */
export function pathsOf(call: Syscall): string[] {
  return [...call.args.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
}

/** Whether the file opened by calls[opened] is fsync'd after it, before `end` and before it is closed. */
export function syncedBefore(calls: Syscall[], opened: number, end: number): boolean {
  const fd = calls[opened]!.result;
  const use = calls
    .slice(opened + 1, end)
    .find((c) => ['fsync', 'fdatasync', 'close'].includes(c.name) && c.args === fd);
  return use !== undefined && use.name !== 'close' && use.result === '0';
}

/** Indexes of the calls that open `file`. */
export function opensOf(calls: Syscall[], file: string): number[] {
  return calls.flatMap((c, n) => (c.name.startsWith('open') && pathsOf(c)[0] === file ? [n] : []));
}
