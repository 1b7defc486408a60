import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { reapWithWorker } from './child-reaper.ts';

export const RECORDER_BIN = fileURLToPath(new URL('../../bin/recorder.js', import.meta.url));

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
      spawn(process.execPath, [RECORDER_BIN, ...args], {
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
