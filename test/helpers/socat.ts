/** A real pseudo-terminal pair from socat: bytes written to `a` come out of `b` and back. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { needPrograms } from './system.ts';

export interface PtyPair {
  a: string;
  b: string;
  /** kills socat: both links disappear */
  kill(): Promise<void>;
  /** starts socat again on the same link paths */
  restart(): Promise<void>;
}

export async function ptyPair(t: ExecutionContext, dir: string, name = 'pty'): Promise<PtyPair> {
  needPrograms('socat');
  const a = join(dir, `${name}-a`);
  const b = join(dir, `${name}-b`);
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const deadline = Date.now() + 10_000;
    // socat logs "starting data transfer loop" once both links exist.
    while (!(existsSync(a) && existsSync(b) && stderr.includes('starting data transfer loop'))) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`socat did not create ${a} and ${b}: ${stderr}`);
      }
      if (child.exitCode !== null) throw new Error(`socat exited: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const kill = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  };
  await start();
  t.teardown(kill);
  return { a, b, kill, restart: start };
}
