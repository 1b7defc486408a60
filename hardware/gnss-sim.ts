/**
 * Simulated GNSS: replays a recorded NMEA log through the same parser and fix tracker as the
 * serial driver (so the watermark shows a real receiver's positions), or reports a fixed position.
 */
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { GnssFix, GnssSource } from './gnss.ts';
import { GnssFrameSink, type GnssCounters } from './gnss-reader.ts';
import { replaySchedule, type ReplayLine } from './gnss-replay.ts';
import { NmeaFramer } from './nmea-parser.ts';

export interface SimGnssOptions {
  /** an NMEA log to replay (GPSD's `.log` format: `#` lines are skipped) */
  file?: string;
  /** or the log text itself */
  text?: string;
  /** or a fixed fix reported every `intervalMs` (used when neither file nor text is given) */
  fixed?: GnssFix;
  /** replay speed: 1 = receiver pace (default), 10 = ten times faster, Infinity = as fast as possible */
  speed?: number;
  /** start over at the end of the log. Default false */
  loop?: boolean;
  /** fixed-position period. Default 1000 ms */
  intervalMs?: number;
  /** system clock for the clock offset; default Date.now */
  now?: () => number;
}

/** A fix at the Changsha municipal government square, for demos; GPSD units. */
export const DEFAULT_SIM_FIX: GnssFix = {
  mode: 3,
  time: null,
  lat: 28.22783,
  lon: 112.93883,
  altMSL: 45.0,
  speed: 0,
  track: 0,
  sats: 9,
  hdop: 0.9,
};

/** Events as SerialGnss: 'fix', 'sentence', 'discarded', plus 'end' when a replay finishes. */
export class SimGnss extends EventEmitter implements GnssSource {
  readonly #options: SimGnssOptions;
  readonly #sink: GnssFrameSink;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #fixedFix: GnssFix | null = null;

  constructor(options: SimGnssOptions = {}) {
    super();
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#sink = new GnssFrameSink(this.#now);
    for (const event of ['fix', 'sentence', 'discarded'])
      this.#sink.on(event, (value: unknown) => this.emit(event, value));
  }

  get fix(): GnssFix | null {
    return this.#fixedFix ?? this.#sink.fix;
  }

  get clockOffsetMs(): number | null {
    return this.#fixedFix ? 0 : this.#sink.clockOffsetMs;
  }

  get counters(): GnssCounters {
    return this.#sink.counters;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const { file, text } = this.#options;
    if (file === undefined && text === undefined) {
      this.#startFixed();
      return;
    }
    const log = text ?? (await readFile(file!, 'latin1'));
    this.#replay(replaySchedule(log), 0, 0, new NmeaFramer());
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #startFixed(): void {
    const tick = () => {
      const fix: GnssFix = {
        ...(this.#options.fixed ?? DEFAULT_SIM_FIX),
        time: new Date(this.#now()).toISOString(),
      };
      this.#fixedFix = fix;
      this.emit('fix', fix);
      this.#timer = setTimeout(tick, this.#options.intervalMs ?? 1000);
    };
    tick();
  }

  #replay(lines: ReplayLine[], index: number, startedAt: number, framer: NmeaFramer): void {
    const speed = this.#options.speed ?? 1;
    let i = index;
    // Feed every line that is due now, then wait for the next epoch.
    while (this.#running && i < lines.length) {
      const line = lines[i]!;
      const dueIn = Number.isFinite(speed) ? (line.atMs - startedAt) / speed : 0;
      if (dueIn > 0) break;
      for (const frame of framer.push(Buffer.from(line.line, 'latin1'))) this.#sink.handle(frame);
      i++;
    }
    if (!this.#running) return;
    if (i >= lines.length) {
      for (const frame of framer.end()) this.#sink.handle(frame);
      if (this.#options.loop && lines.length > 0) {
        this.#timer = setTimeout(() => this.#replay(lines, 0, 0, new NmeaFramer()), 1000 / speed);
        return;
      }
      this.#running = false;
      this.emit('end');
      return;
    }
    const next = lines[i]!;
    const wait = Number.isFinite(speed) ? (next.atMs - startedAt) / speed : 0;
    this.#timer = setTimeout(() => this.#replay(lines, i, next.atMs, framer), wait);
  }
}
