/**
 * Stands in for an AVA worker that dies without running its teardown (child-reaper.test.ts).
 * argv: MODE DIR. Starts a long-lived child through the test helpers, prints
 * `{"pid": worker, "children": [...]}` once it runs, then ends as MODE says:
 * `exit` (process.exit), `SIGTERM` (what AVA sends on a timeout) or `SIGKILL`.
 * `device-SIGTERM` starts a real `recorder device run` (DeviceProcess) instead of `sleep`.
 */
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { reapWithWorker } from '../helpers/child-reaper.ts';
import { DeviceProcess, simRecorderFiles } from '../helpers/device-process.ts';

const [mode = 'exit', dir = '.'] = process.argv.slice(2);
let children: number[];
if (mode.startsWith('device-')) {
  const noTeardown = { teardown: () => undefined } as unknown as ExecutionContext;
  const device = await DeviceProcess.start(noTeardown, await simRecorderFiles(dir));
  children = [device.child.pid!];
} else {
  children = [reapWithWorker(spawn('sleep', ['300'], { stdio: 'ignore' })).pid!];
}
process.stdout.write(`${JSON.stringify({ pid: process.pid, children })}\n`);
const end = mode.replace(/^device-/, '');
if (end === 'exit') process.exit(3);
process.kill(process.pid, end as NodeJS.Signals);
