/**
 * Children a test starts die with the test's process, however that process ends. A test's own
 * teardown does not run when AVA times a file out: AVA then SIGTERMs the worker process
 * (`workerThreads: false`), whose `exit` handlers never run, and every `recorder device run`,
 * gateway, socat or mosquitto it started lived on. So each child is registered here, and:
 * - on the worker's `exit` (normal end, AVA's forced exit, an uncaught error) it is SIGKILLed at
 *   once (an `exit` handler may only do synchronous work; process.kill is);
 * - a watchdog (`bash`, one per worker, started with the first child) holds a pipe from the
 *   worker and is told each child's pid as it starts and ends. When the worker dies by any
 *   signal, SIGKILL included, the kernel closes that pipe and the watchdog SIGKILLs every pid it
 *   still holds. The watchdog itself is unref'd: it never keeps a worker alive.
 * Product code is untouched: nothing here changes how `recorder` behaves for a user.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
let watchdog: ChildProcess | null = null;

// `+ PID` registers a child, `- PID` forgets it; end of input kills what is left.
const WATCHDOG_SCRIPT = `
pids=" "
while read -r op pid; do
  if [ "$op" = "+" ]; then pids="$pids$pid "; else pids="\${pids/ $pid / }"; fi
done
[ -n "\${pids// /}" ] && kill -9 $pids 2>/dev/null
exit 0
`;

function tell(line: string): void {
  if (!watchdog) {
    watchdog = spawn('bash', ['-c', WATCHDOG_SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'] });
    // A machine without bash still gets the `exit` handler; the pipe must never crash a test.
    watchdog.on('error', () => undefined);
    watchdog.stdin!.on('error', () => undefined);
    watchdog.unref();
    (watchdog.stdin as unknown as { unref(): void }).unref();
  }
  if (watchdog.stdin!.writable) watchdog.stdin!.write(`${line}\n`);
}

process.on('exit', () => {
  for (const child of live) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Registers `child` to be killed when this test process ends, however it ends; returns it. */
export function reapWithWorker<T extends ChildProcess>(child: T): T {
  const pid = child.pid;
  if (pid === undefined) return child; // it did not start ('error' follows)
  if (child.exitCode !== null || child.signalCode !== null) return child;
  live.add(child);
  tell(`+ ${pid}`);
  child.once('exit', () => {
    live.delete(child);
    tell(`- ${pid}`);
  });
  return child;
}
