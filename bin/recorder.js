#!/usr/bin/env node
// The `recorder` executable. The sources are TypeScript, run through tsx's loader so that a
// checkout works without a build step.
import { spawn } from 'node:child_process';
import { register } from 'tsx/esm/api';

register();
const [command, subcommand] = process.argv.slice(2);
const gatewayRun = command === 'gateway' && subcommand === 'run';
const heap = gatewayRun ? await import('../gateway/heap.ts') : null;
if (heap && !heap.hasGatewayHeapFlag(process.execArgv)) {
  // The gateway needs a V8 flag that only the node command line sets (gateway/heap.ts): run it
  // again with the flag. Signals are passed on; the gateway stops when this process goes (the IPC
  // channel closes), and this process exits the way the gateway did.
  const gateway = spawn(
    process.execPath,
    [...process.execArgv, heap.GATEWAY_HEAP_FLAG, ...process.argv.slice(1)],
    {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    },
  );
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => gateway.kill(signal));
  gateway.on('exit', (code, signal) => {
    if (!signal) process.exit(code ?? 1);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
} else {
  const { main } = await import('../cli/main.ts');
  process.exitCode = await main(process.argv);
}
