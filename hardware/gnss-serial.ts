/**
 * The real GNSS driver: NMEA 0183 over a serial port (serialport 13), reopened with backoff when
 * the port disappears (a USB receiver unplugged, a UART driver reset). serialport is imported
 * lazily so the rest of the product runs where its native binding is absent (STYLE.md).
 */
import { EventEmitter } from 'node:events';
import { RecorderError } from '../protocol/errors.ts';
import type { GnssFix, GnssSource } from './gnss.ts';
import { GnssFrameSink, type GnssCounters } from './gnss-reader.ts';
import { NmeaParser, type NmeaFrame } from './nmea-parser.ts';

export interface SerialGnssOptions {
  /** serial device, e.g. /dev/ttyS1 (from the profile's hardware.gnss.port) */
  port: string;
  /** default 9600, the NMEA 0183 standard rate */
  baud?: number;
  /** system clock for the clock offset; default Date.now */
  now?: () => number;
  /** first reopen delay; doubles up to reopenMaxMs. Default 200 ms */
  reopenMinMs?: number;
  /** default 5000 ms */
  reopenMaxMs?: number;
  /** start() rejects with GNSS_PORT_UNAVAILABLE when the first open fails. Default false: keep retrying */
  failFast?: boolean;
}

interface PortLike extends EventEmitter {
  open(cb: (err: Error | null) => void): void;
  close(cb?: (err: Error | null) => void): void;
  pipe<T extends NodeJS.WritableStream>(dest: T): T;
  unpipe(dest?: NodeJS.WritableStream): void;
  destroy(): void;
  readonly isOpen: boolean;
}

/**
 * Events: those of GnssFrameSink ('fix', 'sentence', 'discarded') plus 'open' (path),
 * 'close' (path), 'port-error' (RecorderError) when an open fails. Never 'error'.
 */
export class SerialGnss extends EventEmitter implements GnssSource {
  readonly #options: Required<Omit<SerialGnssOptions, 'now'>>;
  readonly #sink: GnssFrameSink;
  #port: PortLike | null = null;
  #parser: NmeaParser | null = null;
  #stopped = true;
  #timer: NodeJS.Timeout | null = null;
  #attempt = 0;

  constructor(options: SerialGnssOptions) {
    super();
    this.#options = {
      port: options.port,
      baud: options.baud ?? 9600,
      reopenMinMs: options.reopenMinMs ?? 200,
      reopenMaxMs: options.reopenMaxMs ?? 5000,
      failFast: options.failFast ?? false,
    };
    this.#sink = new GnssFrameSink(options.now);
    for (const event of ['fix', 'sentence', 'discarded'])
      this.#sink.on(event, (value: unknown) => this.emit(event, value));
  }

  get fix(): GnssFix | null {
    return this.#sink.fix;
  }

  get clockOffsetMs(): number | null {
    return this.#sink.clockOffsetMs;
  }

  get counters(): GnssCounters {
    return this.#sink.counters;
  }

  get isOpen(): boolean {
    return this.#port?.isOpen ?? false;
  }

  async start(): Promise<void> {
    if (!this.#stopped) return;
    this.#stopped = false;
    try {
      await this.#open();
    } catch (error) {
      if (this.#options.failFast) {
        this.#stopped = true;
        throw error;
      }
      this.emit('port-error', error);
      this.#scheduleReopen();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const port = this.#port;
    this.#port = null;
    this.#detach(port);
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  async #open(): Promise<void> {
    const { SerialPort } = await import('serialport');
    const port = new SerialPort({
      path: this.#options.port,
      baudRate: this.#options.baud,
      autoOpen: false,
    }) as unknown as PortLike;
    await new Promise<void>((resolve, reject) =>
      port.open((err) =>
        err
          ? reject(
              new RecorderError(
                'GNSS_PORT_UNAVAILABLE',
                `cannot open GNSS port ${this.#options.port}: ${err.message}; check hardware.gnss.port in the profile`,
                { port: this.#options.port },
              ),
            )
          : resolve(),
      ),
    );
    if (this.#stopped) {
      port.close();
      return;
    }
    this.#attempt = 0;
    this.#port = port;
    const parser = new NmeaParser();
    this.#parser = parser;
    parser.on('data', (frame: NmeaFrame) => this.#sink.handle(frame));
    port.pipe(parser);
    this.#sink.counters.opens++;
    const lost = () => this.#lost(port);
    port.on('close', lost);
    // A read error on a vanished device arrives as 'error' and then (or instead of) 'close'.
    port.on('error', lost);
    this.emit('open', this.#options.port);
  }

  #detach(port: PortLike | null): void {
    const parser = this.#parser;
    this.#parser = null;
    if (port && parser) port.unpipe(parser);
    // Whatever was half-received is reported as a partial sentence, not lost silently.
    parser?.end();
  }

  #lost(port: PortLike): void {
    if (this.#port !== port) return;
    this.#port = null;
    this.#detach(port);
    port.removeAllListeners('close');
    port.removeAllListeners('error');
    port.on('error', () => {});
    if (port.isOpen) port.close();
    port.destroy();
    this.emit('close', this.#options.port);
    if (!this.#stopped) this.#scheduleReopen();
  }

  #scheduleReopen(): void {
    if (this.#stopped || this.#timer) return;
    const { reopenMinMs, reopenMaxMs } = this.#options;
    const base = Math.min(reopenMaxMs, reopenMinMs * 2 ** this.#attempt);
    this.#attempt++;
    // Jitter so several devices on one dock do not retry in step.
    const delay = base * (0.75 + Math.random() * 0.5);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#stopped) return;
      this.#open().catch((error: unknown) => {
        this.emit('port-error', error);
        this.#scheduleReopen();
      });
    }, delay);
  }
}
