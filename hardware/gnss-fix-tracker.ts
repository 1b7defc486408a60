/**
 * Merges decoded NMEA sentences into one fix the way GPSD does (its TPV report): each sentence
 * updates what it carries, the fix mode follows GSA, GGA quality and RMC/GLL status, and a time
 * of day becomes a UTC time only once a date is known (RMC or ZDA). Pure: the system clock
 * reading comes in with each sentence.
 *
 * It also finds the end of each reporting cycle (a receiver sends several sentences per epoch):
 * the sentence that came last before the time of day changed ends the cycle from then on, and a
 * new time of day closes a cycle that was not closed yet.
 */
import type { GnssFix } from './gnss.ts';
import type { DecodedSentence, TimeOfDay, UtcDate } from './nmea-sentences.ts';

const DAY_MS = 86_400_000;

export class GnssFixTracker {
  #mode: 1 | 2 | 3 = 1;
  #date: UtcDate | null = null;
  #timeOfDay: TimeOfDay | null = null;
  /** the time of day is known to be valid (from a sentence with a fix, or ZDA) */
  #timeValid = false;
  #lat: number | null = null;
  #lon: number | null = null;
  #altMSL: number | null = null;
  #speed: number | null = null;
  #track: number | null = null;
  #sats: number | null = null;
  #hdop: number | null = null;
  /** a GGA or GNS with a fix has been seen: they, not GSA, decide 2D or 3D */
  #sawAltitudeSentence = false;
  #clockOffsetMs: number | null = null;
  #satellitesInView: number | null = null;

  #epoch: TimeOfDay | null = null;
  #reported = false;
  #lastKey: string | null = null;
  #enderKey: string | null = null;

  /** GNSS time minus system time (ms) at the latest sentence carrying a valid time, or null. */
  get clockOffsetMs(): number | null {
    return this.#clockOffsetMs;
  }

  get satellitesInView(): number | null {
    return this.#satellitesInView;
  }

  /** The fix as GPSD would report it now: no position without a fix. */
  get fix(): GnssFix {
    const hasFix = this.#mode >= 2;
    const time =
      this.#timeValid && this.#date !== null && this.#timeOfDay !== null
        ? new Date(this.#date + this.#timeOfDay).toISOString()
        : null;
    return {
      mode: this.#mode,
      time,
      lat: hasFix ? this.#lat : null,
      lon: hasFix ? this.#lon : null,
      altMSL: this.#mode === 3 ? this.#altMSL : null,
      speed: hasFix ? this.#speed : null,
      track: hasFix ? this.#track : null,
      sats: this.#sats,
      hdop: this.#hdop,
    };
  }

  /**
   * Applies one sentence received at `systemNow` (ms since epoch, system clock). Returns the fixes
   * of the cycles this sentence completed (usually none or one).
   */
  update(sentence: DecodedSentence, key: string, systemNow: number): GnssFix[] {
    const out: GnssFix[] = [];
    const t = 'time' in sentence ? sentence.time : null;
    if (t !== null && this.#epoch !== null && t !== this.#epoch) {
      if (this.#lastKey !== null) this.#enderKey = this.#lastKey;
      if (!this.#reported) out.push(this.fix);
      this.#reported = false;
    }
    if (t !== null) this.#epoch = t;
    this.#apply(sentence, systemNow);
    this.#lastKey = key;
    const lastPart = sentence.id !== 'GSV' || sentence.index === sentence.total;
    if (key === this.#enderKey && lastPart && !this.#reported) {
      out.push(this.fix);
      this.#reported = true;
    }
    return out;
  }

  #apply(s: DecodedSentence, systemNow: number): void {
    switch (s.id) {
      case 'GGA': {
        // GPSD: an empty quality field is not "invalid" (MyGuide 3100 leaves it empty with a fix).
        // With an empty quality it takes three satellites for a (2D) fix, as GPSD decides.
        const guessed = s.quality === null;
        if (s.quality === 0 || (guessed && (s.lat === null || s.sats === null || s.sats < 3))) {
          this.#noFix(s.time);
          break;
        }
        this.#setTime(s.time, systemNow);
        if (s.sats === 0) {
          // GPSD: a fix from no satellites is no fix (Garmin 25LP repeats its last position).
          this.#mode = 1;
          break;
        }
        this.#setPosition(s.lat, s.lon);
        if (s.altMSL !== null) this.#altMSL = s.altMSL;
        if (s.sats !== null) this.#sats = s.sats;
        if (s.hdop !== null) this.#hdop = s.hdop;
        this.#sawAltitudeSentence = true;
        this.#mode = s.altMSL !== null && !guessed ? 3 : 2;
        break;
      }
      case 'GNS':
        if (!/[^N]/.test(s.modeIndicator)) {
          this.#noFix(s.time);
          break;
        }
        this.#setTime(s.time, systemNow);
        this.#setPosition(s.lat, s.lon);
        if (s.altMSL !== null) this.#altMSL = s.altMSL;
        if (s.sats !== null) this.#sats = s.sats;
        if (s.hdop !== null) this.#hdop = s.hdop;
        this.#sawAltitudeSentence = true;
        this.#mode = s.altMSL !== null ? 3 : 2;
        break;
      case 'RMC':
        if (!s.valid || s.modeIndicator === 'N') {
          this.#noFix(s.time);
          break;
        }
        if (s.date !== null) this.#date = s.date;
        this.#setTime(s.time, systemNow);
        this.#setPosition(s.lat, s.lon);
        if (s.speed !== null) this.#speed = s.speed;
        if (s.track !== null) this.#track = s.track;
        if (this.#mode < 2) this.#mode = 2;
        break;
      case 'GLL':
        if (!s.valid) {
          this.#noFix(s.time);
          break;
        }
        this.#setTime(s.time, systemNow);
        this.#setPosition(s.lat, s.lon);
        if (this.#mode < 2) this.#mode = 2;
        break;
      case 'GSA':
        // GPSD lets GGA/GNS decide between 2D and 3D (altitude present or not) once it has seen
        // one; GSA only says "no fix" then. Receivers without GGA get their mode from GSA.
        if (s.fixMode === 1 || (s.fixMode !== null && !this.#sawAltitudeSentence)) this.#mode = s.fixMode;
        if (s.hdop !== null) this.#hdop = s.hdop;
        break;
      case 'VTG':
        if (s.modeIndicator === 'N') break;
        if (s.speed !== null) this.#speed = s.speed;
        if (s.track !== null) this.#track = s.track;
        break;
      case 'ZDA':
        if (s.date !== null) this.#date = s.date;
        this.#setTime(s.time, systemNow);
        break;
      case 'GSV':
        if (s.inView !== null) this.#satellitesInView = s.inView;
        break;
    }
  }

  /** A sentence saying "no fix": the receiver clock keeps running once its time was valid. */
  #noFix(t: TimeOfDay | null): void {
    this.#mode = 1;
    if (this.#timeValid && t !== null) this.#advanceTime(t);
  }

  #setPosition(lat: number | null, lon: number | null): void {
    if (lat === null || lon === null) return;
    this.#lat = lat;
    this.#lon = lon;
  }

  #setTime(t: TimeOfDay | null, systemNow: number): void {
    if (t === null) return;
    // Measure the offset on the first sentence of an epoch: later ones of the same epoch arrive
    // later still (serial transmission), which would only add latency to the figure.
    const firstOfEpoch = t !== this.#timeOfDay || !this.#timeValid;
    this.#advanceTime(t);
    this.#timeValid = true;
    if (this.#date !== null && (firstOfEpoch || this.#clockOffsetMs === null)) {
      this.#clockOffsetMs = this.#date + this.#timeOfDay! - systemNow;
    }
  }

  #advanceTime(t: TimeOfDay): void {
    // Midnight: a time of day far below the last one means the date rolled over before the
    // sentence carrying the new date arrived.
    if (this.#date !== null && this.#timeOfDay !== null && t < this.#timeOfDay - DAY_MS / 2) {
      this.#date += DAY_MS;
    }
    this.#timeOfDay = t;
  }
}
