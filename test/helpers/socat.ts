/**
 * Real pseudo-terminal pairs from socat: bytes written to `a` come out of `b` and back. The one
 * helper every serial test and benchmark uses (GNSS readers, the service port, the flash tool).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { reapWithWorker } from './child-reaper.ts';
import { needPrograms } from './system.ts';

export interface PtyPair {
  /** one end (give it to a program) */
  a: string;
  /** the other end */
  b: string;
  /** Kills socat: both ends close at once, as when a USB cable is pulled. */
  kill(): Promise<void>;
  /** Starts socat again on the same link paths. */
  restart(): Promise<void>;
}

/** Starts `socat pty,raw,echo=0,link=A pty,raw,echo=0,link=B`; the caller kills it. */
export async function startPtyPair(dir: string, name = 'pty'): Promise<PtyPair> {
  needPrograms('socat');
  const a = join(dir, `${name}-a`);
  const b = join(dir, `${name}-b`);
  let child: ChildProcess | null = null;
  const start = async () => {
    // A socat killed earlier leaves its links behind, dangling.
    for (const link of [a, b]) rmSync(link, { force: true });
    const c = reapWithWorker(
      spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    child = c;
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => (stderr += d));
    const deadline = Date.now() + 10_000;
    // socat logs "starting data transfer loop" once both links exist.
    while (!(existsSync(a) && existsSync(b) && stderr.includes('starting data transfer loop'))) {
      if (c.exitCode !== null) throw new Error(`socat exited: ${stderr}`);
      if (Date.now() > deadline) {
        c.kill('SIGKILL');
        throw new Error(`socat did not create ${a} and ${b}: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const kill = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return { a, b, kill, restart: start };
}

/** A pair killed when the test ends. */
export async function ptyPair(t: ExecutionContext, dir: string, name = 'pty'): Promise<PtyPair> {
  const pair = await startPtyPair(dir, name);
  t.teardown(pair.kill);
  return pair;
}
