import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { GATEWAY_HEAP_FLAG } from '../../gateway/heap.ts';
import { reapWithWorker } from './child-reaper.ts';

export const RECORDER_BIN = fileURLToPath(new URL('../../bin/recorder.js', import.meta.url));

/**
 * The node arguments that run `recorder ARGS`. `gateway run` gets its heap flag on the command line
 * (gateway/heap.ts), so the process a test signals or kills is the gateway itself, not
 * bin/recorder.js starting it again.
 */
export function recorderNodeArgs(args: readonly string[]): string[] {
  const gatewayRun = args[0] === 'gateway' && args[1] === 'run';
  return [...(gatewayRun ? [GATEWAY_HEAP_FLAG] : []), RECORDER_BIN, ...args];
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `recorder` executable in a child process. */
export function runRecorder(
  args: string[],
  options: { cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = reapWithWorker(
      spawn(process.execPath, recorderNodeArgs(args), {
        cwd: options.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: options.timeoutMs ?? 60_000,
      }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/**
 * Starts the real `recorder` executable as a long-lived child (a gateway, a device, a GNSS
 * reader), its output piped; it is killed with the test's process however that ends.
 */
export function spawnRecorder(args: string[]): ChildProcessByStdio<null, Readable, Readable> {
  return reapWithWorker(
    spawn(process.execPath, recorderNodeArgs(args), { stdio: ['ignore', 'pipe', 'pipe'] }),
  );
}
