/**
 * Runs the real `recorder gateway run --config FILE` in a child process, so a test can kill it the
 * way a power cut or the OOM killer does (SIGKILL: no close, no flush, the SQLite WAL and the
 * incoming files left as they are) and start it again on the same configuration.
 */
import type { ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import type { LogRecord } from '../../gateway/log.ts';
import { recorderNodeArgs } from './cli.ts';

export class GatewayProcess {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => (this.output += d));
    child.stderr!.on('data', (d: Buffer) => (this.output += d));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /**
   * Starts the gateway and resolves once it logs `gateway listening`. The teardown (SIGKILL) is
   * registered before the process starts, so a failing test never leaves a gateway behind.
   */
  static async start(t: ExecutionContext, configPath: string, timeoutMs = 60_000): Promise<GatewayProcess> {
    const started: { gateway?: GatewayProcess } = {};
    t.teardown(() => {
      const child = started.gateway?.child;
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    started.gateway = new GatewayProcess(
      spawn(process.execPath, recorderNodeArgs(['gateway', 'run', '--config', configPath]), {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    const gateway = started.gateway;
    const deadline = Date.now() + timeoutMs;
    while (!gateway.logs().some((r) => r.msg === 'gateway listening')) {
      if (gateway.child.exitCode !== null || Date.now() > deadline)
        throw new Error(`the gateway did not start:\n${gateway.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return gateway;
  }

  /** The JSON log records written so far (lines that are not JSON are skipped). */
  logs(): LogRecord[] {
    const records: LogRecord[] = [];
    for (const line of this.output.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        records.push(JSON.parse(line) as LogRecord);
      } catch {
        // a line still being written
      }
    }
    return records;
  }

  /** The port it listens on (from its `gateway listening` record). */
  get port(): number {
    return this.logs().find((r) => r.msg === 'gateway listening')!.port as number;
  }

  /** Kills it without warning and resolves when it is gone. */
  async kill(
    signal: NodeJS.Signals = 'SIGKILL',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill(signal);
    return this.exited;
  }
}
