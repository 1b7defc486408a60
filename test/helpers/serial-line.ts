/**
 * Real serial lines for tests and benchmarks: a relay between two socat pseudo-terminal pairs
 * (./socat.ts) that emulates the wire: pacing at a line rate (a pty has none), flipped bits, dropped
 * bytes, and a cable pulled mid-frame.
 *
 *   device ── pty pair A ── relay ── pty pair B ── technician's tool
 */
import type { SerialPort } from 'serialport';
import { openSerialPort } from '../../hardware/serial-link.ts';

export interface LineOptions {
  /** Bytes per second each way; null: as fast as the pty goes. 115200 baud 8N1 = 11520. */
  bytesPerSecond?: number | null;
  /** Probability that a byte has one bit flipped. Default 0. */
  flipProbability?: number;
  /** Probability that a byte is dropped. Default 0. */
  dropProbability?: number;
  /** Which way the noise applies. Default: both. */
  noiseOn?: 'both' | 'toHost' | 'toDevice';
  /** Seed for the noise. Default 1. */
  seed?: number;
}

interface Direction {
  queue: Buffer[];
  queued: number;
  forwarded: number;
  flipped: number;
  dropped: number;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Opens a real serialport on a pty end, raw. */
export async function openPort(path: string): Promise<SerialPort> {
  // Hang-up aware like the link's own port: the relay's end of a killed pair closes by itself
  // instead of spinning on 0-byte reads forever (which kept the test worker from exiting).
  return (await openSerialPort({ path })) as SerialPort;
}

export class LineRelay {
  private deviceSide!: SerialPort;
  private hostSide: SerialPort | null = null;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | null = null;
  private lastTick = 0;
  private budget = { toHost: 0, toDevice: 0 };
  /** When true the cable is out: every byte is lost, both ways. */
  cut = false;
  readonly toHost: Direction = { queue: [], queued: 0, forwarded: 0, flipped: 0, dropped: 0 };
  readonly toDevice: Direction = { queue: [], queued: 0, forwarded: 0, flipped: 0, dropped: 0 };

  private constructor(public options: LineOptions) {
    this.random = mulberry32(options.seed ?? 1);
  }

  /** `devicePath`: the relay's end of the device's pair; `hostPath`: its end of the tool's pair. */
  static async start(devicePath: string, hostPath: string, options: LineOptions = {}): Promise<LineRelay> {
    const relay = new LineRelay(options);
    relay.deviceSide = await openPort(devicePath);
    relay.deviceSide.on('data', (chunk: Buffer) => relay.take(relay.toHost, chunk));
    relay.deviceSide.on('error', () => undefined);
    await relay.attachHost(hostPath);
    relay.lastTick = performance.now();
    relay.timer = setInterval(() => relay.tick(), 4);
    return relay;
  }

  /** Plugs the tool's side (again): after its socat pair was killed, give the new pair's end. */
  async attachHost(hostPath: string): Promise<void> {
    const previous = this.hostSide;
    if (previous?.isOpen) await new Promise<void>((r) => previous.close(() => r()));
    const port = await openPort(hostPath);
    port.on('data', (chunk: Buffer) => this.take(this.toDevice, chunk));
    port.on('error', () => undefined);
    port.on('close', () => {
      if (this.hostSide === port) this.hostSide = null;
    });
    this.hostSide = port;
  }

  private take(dir: Direction, chunk: Buffer): void {
    if (this.cut) {
      dir.dropped += chunk.length;
      return;
    }
    const noiseOn = this.options.noiseOn ?? 'both';
    const noisy = noiseOn === 'both' || (noiseOn === 'toHost') === (dir === this.toHost);
    const flip = noisy ? (this.options.flipProbability ?? 0) : 0;
    const drop = noisy ? (this.options.dropProbability ?? 0) : 0;
    let out = chunk;
    if (flip > 0 || drop > 0) {
      const bytes: number[] = [];
      for (const byte of chunk) {
        if (drop > 0 && this.random() < drop) {
          dir.dropped++;
          continue;
        }
        if (flip > 0 && this.random() < flip) {
          dir.flipped++;
          bytes.push(byte ^ (1 << Math.floor(this.random() * 8)));
        } else bytes.push(byte);
      }
      out = Buffer.from(bytes);
    }
    dir.queue.push(out);
    dir.queued += out.length;
    if (!this.options.bytesPerSecond) this.drain(dir, Number.POSITIVE_INFINITY);
  }

  private tick(): void {
    const now = performance.now();
    const rate = this.options.bytesPerSecond;
    if (!rate) return;
    const earned = ((now - this.lastTick) / 1000) * rate;
    this.lastTick = now;
    for (const [name, dir] of [
      ['toHost', this.toHost],
      ['toDevice', this.toDevice],
    ] as const) {
      // An idle line does not save up capacity: at most one tick's worth carries over.
      this.budget[name] = dir.queued === 0 ? 0 : Math.min(this.budget[name] + earned, rate * 0.02);
      const sent = this.drain(dir, Math.floor(this.budget[name]));
      this.budget[name] -= sent;
    }
  }

  private drain(dir: Direction, max: number): number {
    let sent = 0;
    const target = dir === this.toHost ? this.hostSide : this.deviceSide;
    while (dir.queue.length > 0 && sent < max) {
      const head = dir.queue[0]!;
      const n = Math.min(head.length, max - sent);
      const piece = head.subarray(0, n);
      if (n === head.length) dir.queue.shift();
      else dir.queue[0] = head.subarray(n);
      dir.queued -= n;
      sent += n;
      if (this.cut || !target || target.destroyed) {
        dir.dropped += n;
        continue;
      }
      dir.forwarded += n;
      target.write(piece);
    }
    return sent;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const port of [this.deviceSide, this.hostSide]) {
      if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
    }
  }
}
