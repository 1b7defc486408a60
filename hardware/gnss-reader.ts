/**
 * The part of a GNSS driver that does not care where bytes come from: NMEA frames in (from the
 * NmeaParser stream), fixes, counters and the clock offset out. The serial driver and the
 * simulated one both feed this, so a replayed log goes through exactly the code a receiver does.
 */
import { EventEmitter } from 'node:events';
import { GnssFixTracker } from './gnss-fix-tracker.ts';
import type { GnssFix } from './gnss.ts';
import type { DiscardReason, NmeaDiscarded, NmeaFrame, NmeaSentence } from './nmea-parser.ts';
import { decodeSentence } from './nmea-sentences.ts';

export interface GnssCounters {
  /** well-formed sentences with a good checksum */
  sentences: number;
  /** of those, sentences the reader used (GGA, RMC, GNS, GSA, GSV, VTG, GLL, ZDA from GNSS talkers) */
  decoded: number;
  /** discarded frames by reason */
  discarded: Record<DiscardReason, number>;
  /** bytes in discarded frames */
  discardedBytes: number;
  /** times the port was (re)opened */
  opens: number;
}

export function emptyCounters(): GnssCounters {
  return {
    sentences: 0,
    decoded: 0,
    discarded: {
      garbage: 0,
      checksum: 0,
      'bad-character': 0,
      'too-long': 0,
      partial: 0,
      'no-checksum': 0,
      'bad-address': 0,
    },
    discardedBytes: 0,
    opens: 0,
  };
}

/**
 * Events: 'fix' (GnssFix) once per reporting cycle; 'sentence' ({sentence, fix}) after every
 * sentence with the fix as it stands then; 'discarded' (NmeaDiscarded). Never 'error' for input.
 */
export class GnssFrameSink extends EventEmitter {
  readonly counters: GnssCounters = emptyCounters();
  readonly #tracker = new GnssFixTracker();
  readonly #now: () => number;
  #fix: GnssFix | null = null;

  constructor(now: () => number = Date.now) {
    super();
    this.#now = now;
  }

  get fix(): GnssFix | null {
    return this.#fix;
  }

  get clockOffsetMs(): number | null {
    return this.#tracker.clockOffsetMs;
  }

  get satellitesInView(): number | null {
    return this.#tracker.satellitesInView;
  }

  handle(frame: NmeaFrame): void {
    if (frame.type === 'discarded') {
      this.#discard(frame);
      return;
    }
    this.#sentence(frame);
  }

  #discard(frame: NmeaDiscarded): void {
    this.counters.discarded[frame.reason]++;
    this.counters.discardedBytes += frame.bytes;
    this.emit('discarded', frame);
  }

  #sentence(sentence: NmeaSentence): void {
    this.counters.sentences++;
    const decoded = decodeSentence(sentence);
    if (decoded) {
      this.counters.decoded++;
      for (const fix of this.#tracker.update(decoded, sentence.talker + sentence.id, this.#now())) {
        this.#fix = fix;
        this.emit('fix', fix);
      }
    }
    this.emit('sentence', { sentence, fix: this.#tracker.fix });
  }
}
