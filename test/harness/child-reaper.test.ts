/**
 * A test process that dies without its teardown (as an AVA worker does on a timeout) leaves no
 * child behind: not a plain long-lived child, not a `recorder device run` with its capture child.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { alive, processesNaming } from '../helpers/processes.ts';
import { tempDir } from '../helpers/temp.ts';

const CHILD = fileURLToPath(new URL('./reaper-child.ts', import.meta.url));

async function within(ms: number, check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** Runs reaper-child.ts in MODE; resolves with what it printed and how it ended. */
function runDyingWorker(mode: string, dir: string) {
  const child = spawn(process.execPath, ['--import=tsx', CHILD, mode, dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise<{
    children: number[];
    signal: NodeJS.Signals | null;
    code: number | null;
    stderr: string;
  }>((resolve) =>
    child.on('close', (code, signal) => {
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      const children = line ? (JSON.parse(line) as { children: number[] }).children : [];
      resolve({ children, signal, code, stderr });
    }),
  );
}

for (const [mode, ended] of [
  ['exit', { code: 3, signal: null }],
  ['SIGTERM', { code: null, signal: 'SIGTERM' }],
  ['SIGKILL', { code: null, signal: 'SIGKILL' }],
] as const) {
  test(`a worker that ends by ${mode} without teardown leaves no child running`, async (t) => {
    const r = await runDyingWorker(mode, tempDir(t));
    t.teardown(() => r.children.forEach((pid) => alive(pid) && process.kill(pid, 'SIGKILL')));
    t.deepEqual({ code: r.code, signal: r.signal }, ended, r.stderr);
    t.is(r.children.length, 1, r.stderr);
    t.true(await within(5000, () => r.children.every((pid) => !alive(pid))), `still running: ${r.children}`);
  });
}

test('a worker killed as AVA kills it on a timeout leaves no recorder device run nor its capture', async (t) => {
  const dir = tempDir(t);
  const r = await runDyingWorker('device-SIGTERM', dir);
  t.teardown(() => processesNaming(dir).forEach((pid) => process.kill(pid, 'SIGKILL')));
  t.is(r.signal, 'SIGTERM', r.stderr);
  t.is(r.children.length, 1, r.stderr);
  t.true(await within(5000, () => !alive(r.children[0]!)), 'recorder device run still running');
  // The capture child ends by itself once its device is gone (its IPC channel closes).
  t.true(
    await within(15_000, () => processesNaming(dir).length === 0),
    `still running: ${processesNaming(dir)}`,
  );
});
