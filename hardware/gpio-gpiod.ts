/**
 * GPIO through the libgpiod command-line tools (Debian `gpiod`), for kernels without sysfs GPIO:
 * `gpiomon` reports input edges, one `gpioset --mode=signal` per output line holds its level. Both
 * run as supervised child processes: one that dies unexpectedly is restarted with backoff, and
 * every exit is reported on the driver's 'tool-exit' event (and logged by whoever listens).
 * Written for libgpiod 1.6 (Debian 12); the tool paths are options so tests can use stand-ins.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { RecorderError } from '../protocol/errors.ts';
import type { GpioDriver, GpioEdge, Level } from './gpio.ts';

export interface GpiodDriverOptions {
  /** default 'gpiochip0' (profile hardware.gpio.chip) */
  chip?: string;
  /** default 'gpiomon' */
  gpiomon?: string;
  /** default 'gpioset' */
  gpioset?: string;
  /** first restart delay, doubling to restartMaxMs; default 200 ms */
  restartMinMs?: number;
  /** default 5000 ms */
  restartMaxMs?: number;
  /** system clock, default Date.now */
  now?: () => number;
}

/** `gpiomon -F '%o %e %s %n'`: offset, event (1 rising, 0 falling), seconds, nanoseconds. */
const GPIOMON_FORMAT = '%o %e %s %n';

/** Parses one gpiomon line in our format (or its default format); null for anything else. */
export function parseGpiomonLine(
  line: string,
): { line: number; level: Level; seconds: number; nanos: number } | null {
  let m = /^\s*(\d+) ([01]) (\d+) (\d+)\s*$/.exec(line);
  if (m)
    return { line: Number(m[1]), level: m[2] === '1' ? 1 : 0, seconds: Number(m[3]), nanos: Number(m[4]) };
  // libgpiod 1.x default: "event:  RISING EDGE offset: 17 timestamp: [    1234.567890123]"
  m = /^event:\s+(RISING|FALLING) EDGE offset: (\d+) timestamp: \[\s*(\d+)\.(\d{1,9})\]\s*$/.exec(line);
  if (m)
    return {
      line: Number(m[2]),
      level: m[1] === 'RISING' ? 1 : 0,
      seconds: Number(m[3]),
      nanos: Number(m[4]!.padEnd(9, '0')),
    };
  return null;
}

export interface ToolExit {
  tool: 'gpiomon' | 'gpioset';
  code: number | null;
  signal: string | null;
  stderr: string;
  /** ms until the restart */
  restartInMs: number;
}

/**
 * Events: 'tool-exit' (ToolExit) when a child dies unexpectedly, 'unparsed' (string) for a
 * gpiomon line that is not an event. Never 'error'.
 */
export class GpiodDriver extends EventEmitter implements GpioDriver {
  readonly name = 'gpiod' as const;
  readonly #chip: string;
  readonly #gpiomon: string;
  readonly #gpioset: string;
  readonly #restartMinMs: number;
  readonly #restartMaxMs: number;
  readonly #now: () => number;
  #closed = false;
  #monitor: ChildProcess | null = null;
  #monitorRestarts = 0;
  readonly #holders = new Map<number, { child: ChildProcess; level: Level; restarts: number }>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #queues = new Map<number, Promise<void>>();
  /** kernel event timestamps are CLOCK_MONOTONIC (libgpiod 1.6): ms to add to get the system clock */
  #clockOffset: number | null = null;

  constructor(options: GpiodDriverOptions = {}) {
    super();
    this.#chip = options.chip ?? 'gpiochip0';
    this.#gpiomon = options.gpiomon ?? 'gpiomon';
    this.#gpioset = options.gpioset ?? 'gpioset';
    this.#restartMinMs = options.restartMinMs ?? 200;
    this.#restartMaxMs = options.restartMaxMs ?? 5000;
    this.#now = options.now ?? Date.now;
  }

  async watch(lines: number[], onEdge: (edge: GpioEdge) => void): Promise<void> {
    if (lines.length === 0) return;
    await this.#startMonitor(lines, onEdge);
  }

  write(line: number, level: Level): Promise<void> {
    // One change at a time per line, in order: a blinking LED must not leave two holders behind.
    const next = (this.#queues.get(line) ?? Promise.resolve()).then(() => this.#change(line, level));
    const queued = next.catch(() => {});
    this.#queues.set(line, queued);
    void queued.then(() => {
      if (this.#queues.get(line) === queued) this.#queues.delete(line);
    });
    return next;
  }

  async #change(line: number, level: Level): Promise<void> {
    if (this.#closed) return;
    const previous = this.#holders.get(line);
    if (previous?.level === level && previous.child.exitCode === null) return;
    // libgpiod 1.6 cannot change a held line: end the old holder before requesting it again.
    if (previous) {
      this.#holders.delete(line);
      await this.#end(previous.child);
    }
    await this.#hold(line, level, previous?.restarts ?? 0);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const children = [this.#monitor, ...[...this.#holders.values()].map((h) => h.child)];
    this.#monitor = null;
    this.#holders.clear();
    await Promise.all(children.map((c) => (c ? this.#end(c) : undefined)));
  }

  #spawn(tool: 'gpiomon' | 'gpioset', args: string[]): Promise<ChildProcess> {
    const command = tool === 'gpiomon' ? this.#gpiomon : this.#gpioset;
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.once('spawn', () => resolve(child));
      child.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new RecorderError(
            'GPIO_UNAVAILABLE',
            error.code === 'ENOENT'
              ? `${command} is not installed: install Debian package gpiod, or set hardware.gpio.driver to "onoff" (sysfs) or "sim"`
              : `cannot run ${command}: ${error.message}`,
            { driver: 'gpiod', tool, alternatives: ['onoff', 'sim'] },
          ),
        ),
      );
    });
  }

  async #startMonitor(lines: number[], onEdge: (edge: GpioEdge) => void): Promise<void> {
    const child = await this.#spawn('gpiomon', [
      '-b',
      '-F',
      GPIOMON_FORMAT,
      this.#chip,
      ...lines.map(String),
    ]);
    if (this.#closed) {
      await this.#end(child);
      return;
    }
    this.#monitor = child;
    const startedAt = this.#now();
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const event = parseGpiomonLine(text);
      if (!event) {
        this.emit('unparsed', text);
        return;
      }
      const eventMs = event.seconds * 1000 + event.nanos / 1e6;
      this.#clockOffset ??= this.#now() - eventMs;
      onEdge({ line: event.line, level: event.level, at: eventMs + this.#clockOffset });
    });
    child.once('exit', (code, signal) => {
      if (this.#monitor !== child || this.#closed) return;
      this.#monitor = null;
      // A run that lasted a while resets the backoff: it was a new fault, not a crash loop.
      if (this.#now() - startedAt > 10_000) this.#monitorRestarts = 0;
      const delay = this.#backoff(this.#monitorRestarts++);
      this.emit('tool-exit', { tool: 'gpiomon', code, signal, stderr: stderr.trim(), restartInMs: delay });
      this.#later(delay, () =>
        this.#startMonitor(lines, onEdge).catch((error: unknown) =>
          this.emit('tool-exit', {
            tool: 'gpiomon',
            code: null,
            signal: null,
            stderr: String((error as Error).message),
            restartInMs: -1,
          }),
        ),
      );
    });
  }

  async #hold(line: number, level: Level, restarts: number): Promise<void> {
    const child = await this.#spawn('gpioset', ['--mode=signal', this.#chip, `${line}=${level}`]);
    if (this.#closed) {
      await this.#end(child);
      return;
    }
    const holder = { child, level, restarts };
    this.#holders.set(line, holder);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.stdout!.resume();
    child.once('exit', (code, signal) => {
      if (this.#holders.get(line) !== holder || this.#closed) return;
      this.#holders.delete(line);
      const delay = this.#backoff(restarts);
      this.emit('tool-exit', { tool: 'gpioset', code, signal, stderr: stderr.trim(), restartInMs: delay });
      this.#later(delay, () => {
        if (!this.#holders.has(line)) this.#hold(line, level, restarts + 1).catch(() => {});
      });
    });
  }

  #backoff(attempt: number): number {
    return Math.min(this.#restartMaxMs, this.#restartMinMs * 2 ** attempt);
  }

  #later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#closed) fn();
    }, ms);
    this.#timers.add(t);
  }

  #end(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}
