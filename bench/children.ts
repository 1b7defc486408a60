/**
 * Child processes of the benches: what is measured runs apart from the process that measures it
 * (fleet: broker, devices, manager; upload: the dock's recorders), and talks to it over IPC.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';

/** Starts `command` on the CPUs `cpus` (all threads inherit the affinity: taskset execs it). */
export function launch(
  cpus: string | undefined,
  command: string,
  args: string[],
  stdio: StdioOptions,
): ChildProcess {
  return cpus ? spawn('taskset', ['-c', cpus, command, ...args], { stdio }) : spawn(command, args, { stdio });
}

/** Runs `file`, a module of bench/, in a node child under tsx, with an IPC channel. */
export function forkChild(cpus: string | undefined, file: string, nodeArgs: string[] = []): ChildProcess {
  const path = new URL(file, import.meta.url).pathname;
  return launch(
    cpus,
    process.execPath,
    [...nodeArgs, '--import=tsx', path],
    ['ignore', 'inherit', 'inherit', 'ipc'],
  );
}

/** Sends `message` to a child and resolves with its first answer of type `answer`. */
export function request<R extends { type: string }>(
  child: ChildProcess,
  message: object,
  answer: R['type'],
): Promise<R> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: R) => {
      if (m.type !== answer) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null) => reject(new Error(`bench child exited with ${code}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send(message);
  });
}
