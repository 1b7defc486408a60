/**
 * NMEA 0183 framing: bytes in, typed frames out. Like zwave-js' serial parser, garbage is not
 * dropped silently: every byte that is not part of a valid sentence leaves in a `discarded` frame
 * with the reason, so the reader can count and report it (STYLE.md "Shape").
 */
import { Transform, type TransformCallback } from 'node:stream';

export type DiscardReason =
  /** bytes outside any sentence: noise, binary protocol frames, a header */
  | 'garbage'
  /** `*HH` does not match the XOR of the sentence body (NMEA 0183 §5.2.1) */
  | 'checksum'
  /** a sentence with a character NMEA does not allow (outside printable ASCII) */
  | 'bad-character'
  /** a sentence longer than `maxLength` without an end */
  | 'too-long'
  /** a sentence cut off by the start of the next one, or by the end of the stream */
  | 'partial'
  /** a sentence without the `*HH` checksum, when checksums are required */
  | 'no-checksum'
  /** framing is fine but the address field is not `TTSSS` or `Pxxx` */
  | 'bad-address';

export interface NmeaSentence {
  type: 'sentence';
  /** `GP`, `GN`, ..., or `P` for proprietary sentences */
  talker: string;
  /** `GGA`, `RMC`, ...; for proprietary sentences the rest of the address (`SRFEPE`, `UBX`) */
  id: string;
  /** the fields after the address, without the checksum */
  fields: string[];
  /** the sentence as received, without the line end */
  raw: string;
}

export interface NmeaDiscarded {
  type: 'discarded';
  reason: DiscardReason;
  /** how many bytes were discarded */
  bytes: number;
  /** up to 100 characters of what was discarded, printable ASCII shown as is, the rest as `\xHH` */
  sample: string;
}

export type NmeaFrame = NmeaSentence | NmeaDiscarded;

export interface NmeaFramerOptions {
  /**
   * Longest sentence accepted, from `$` to the last checksum digit. Default 128: NMEA 0183 says 82
   * with the line end, but u-blox high-precision GGA and proprietary sentences run longer.
   */
  maxLength?: number;
  /** Refuse sentences without `*HH`. Default false: some old receivers omit it (NMEA 0183 allows it for a few sentences). */
  requireChecksum?: boolean;
}

const DOLLAR = 0x24;
const BANG = 0x21;
const CR = 0x0d;
const LF = 0x0a;

/** Pure incremental framer: push bytes, get frames. No I/O, never throws on any input. */
export class NmeaFramer {
  readonly #maxLength: number;
  readonly #requireChecksum: boolean;
  /** bytes of the sentence being collected (starts with `$` or `!`), or of garbage being collected */
  #buffer: number[] = [];
  #inSentence = false;

  constructor(options: NmeaFramerOptions = {}) {
    this.#maxLength = options.maxLength ?? 128;
    this.#requireChecksum = options.requireChecksum ?? false;
  }

  push(chunk: Uint8Array): NmeaFrame[] {
    const out: NmeaFrame[] = [];
    for (const byte of chunk) {
      if (byte === DOLLAR || byte === BANG) {
        if (this.#inSentence) this.#discard(out, 'partial');
        else this.#flushGarbage(out);
        this.#inSentence = true;
        this.#buffer.push(byte);
        continue;
      }
      if (!this.#inSentence) {
        // Line ends between sentences are not garbage.
        if (byte !== CR && byte !== LF) this.#buffer.push(byte);
        else this.#flushGarbage(out);
        continue;
      }
      if (byte === CR || byte === LF) {
        this.#finishSentence(out);
        continue;
      }
      this.#buffer.push(byte);
      if (this.#buffer.length > this.#maxLength) {
        this.#discard(out, 'too-long');
        // The rest of this overlong line is garbage up to the next `$` or line end.
      }
    }
    // Keep garbage bounded too: report it in pieces rather than buffering a binary stream.
    if (!this.#inSentence && this.#buffer.length > 4 * this.#maxLength) this.#flushGarbage(out);
    return out;
  }

  /** End of stream: whatever is left is a partial sentence or garbage. */
  end(): NmeaFrame[] {
    const out: NmeaFrame[] = [];
    if (this.#inSentence) this.#discard(out, 'partial');
    else this.#flushGarbage(out);
    return out;
  }

  #flushGarbage(out: NmeaFrame[]): void {
    if (this.#buffer.length === 0) return;
    out.push(discarded('garbage', this.#buffer));
    this.#buffer = [];
  }

  #discard(out: NmeaFrame[], reason: DiscardReason): void {
    out.push(discarded(reason, this.#buffer));
    this.#buffer = [];
    this.#inSentence = false;
  }

  #finishSentence(out: NmeaFrame[]): void {
    const bytes = this.#buffer;
    this.#buffer = [];
    this.#inSentence = false;
    for (const b of bytes) {
      if (b < 0x20 || b > 0x7e) {
        out.push(discarded('bad-character', bytes));
        return;
      }
    }
    const raw = String.fromCharCode(...bytes);
    const star = raw.lastIndexOf('*');
    let body: string;
    if (star >= 0 && star === raw.length - 3) {
      body = raw.slice(1, star);
      const given = raw.slice(star + 1).toUpperCase();
      if (!/^[0-9A-F]{2}$/.test(given) || parseInt(given, 16) !== xorChecksum(body)) {
        out.push(discarded('checksum', bytes));
        return;
      }
    } else if (this.#requireChecksum || star >= 0) {
      out.push(discarded(star >= 0 ? 'checksum' : 'no-checksum', bytes));
      return;
    } else {
      body = raw.slice(1);
    }
    const fields = body.split(',');
    const address = fields.shift() ?? '';
    let talker: string;
    let id: string;
    if (/^P[A-Z0-9]{1,15}$/.test(address)) {
      talker = 'P';
      id = address.slice(1);
    } else if (/^[A-Z][A-Z0-9][A-Z]{3}$/.test(address)) {
      talker = address.slice(0, 2);
      id = address.slice(2);
    } else {
      out.push(discarded('bad-address', bytes));
      return;
    }
    out.push({ type: 'sentence', talker, id, fields, raw });
  }
}

/** NMEA 0183 checksum: XOR of every character between `$` and `*`. */
export function xorChecksum(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i);
  return sum;
}

/** Builds a sentence with its checksum, for simulators and tests: `nmeaSentence('GPGGA,...')`. */
export function nmeaSentence(body: string): string {
  return `$${body}*${xorChecksum(body).toString(16).toUpperCase().padStart(2, '0')}`;
}

function discarded(reason: DiscardReason, bytes: number[]): NmeaDiscarded {
  let sample = '';
  for (const b of bytes.slice(0, 100)) {
    sample += b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return { type: 'discarded', reason, bytes: bytes.length, sample };
}

/** The framer as a stream transformer: Buffer chunks in, NmeaFrame objects out. */
export class NmeaParser extends Transform {
  readonly #framer: NmeaFramer;

  constructor(options: NmeaFramerOptions = {}) {
    super({ readableObjectMode: true });
    this.#framer = new NmeaFramer(options);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    for (const frame of this.#framer.push(chunk)) this.push(frame);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    for (const frame of this.#framer.end()) this.push(frame);
    callback();
  }
}
