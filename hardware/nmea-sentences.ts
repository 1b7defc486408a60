/**
 * Typed decoding of the NMEA 0183 sentences a GNSS reader needs (GGA, RMC, GNS, GSA, GSV, VTG,
 * GLL, ZDA) from any of the talkers GP, GN, GL, GA, GB, BD, GQ, QZ. Pure; fields a receiver left
 * empty decode to null. Units are converted to GPSD's: degrees, metres, m/s.
 */
import type { NmeaSentence } from './nmea-parser.ts';

export const GNSS_TALKERS = ['GP', 'GN', 'GL', 'GA', 'GB', 'BD', 'GQ', 'QZ'] as const;
export type GnssTalker = (typeof GNSS_TALKERS)[number];

/** Time of day in ms since midnight UTC. */
export type TimeOfDay = number;
/** A UTC date as ms since the epoch at 00:00. */
export type UtcDate = number;

export type DecodedSentence =
  | {
      id: 'GGA';
      time: TimeOfDay | null;
      lat: number | null;
      lon: number | null;
      /** 0 invalid, 1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 dead reckoning, ... */
      quality: number | null;
      sats: number | null;
      hdop: number | null;
      altMSL: number | null;
      geoidSep: number | null;
    }
  | {
      id: 'RMC';
      time: TimeOfDay | null;
      valid: boolean;
      lat: number | null;
      lon: number | null;
      speed: number | null;
      track: number | null;
      date: UtcDate | null;
      /** NMEA 2.3 mode indicator (A, D, E, N, ...), null before 2.3 */
      modeIndicator: string | null;
    }
  | {
      id: 'GNS';
      time: TimeOfDay | null;
      lat: number | null;
      lon: number | null;
      /** one mode character per constellation; all `N` means no fix */
      modeIndicator: string;
      sats: number | null;
      hdop: number | null;
      altMSL: number | null;
    }
  | {
      id: 'GSA';
      /** 1 no fix, 2 2D, 3 3D */
      fixMode: 1 | 2 | 3 | null;
      used: number[];
      pdop: number | null;
      hdop: number | null;
      vdop: number | null;
    }
  | {
      id: 'GSV';
      total: number | null;
      index: number | null;
      inView: number | null;
      satellites: { prn: number; elevation: number | null; azimuth: number | null; snr: number | null }[];
    }
  | { id: 'VTG'; track: number | null; speed: number | null; modeIndicator: string | null }
  | {
      id: 'GLL';
      lat: number | null;
      lon: number | null;
      time: TimeOfDay | null;
      valid: boolean;
      modeIndicator: string | null;
    }
  | { id: 'ZDA'; time: TimeOfDay | null; date: UtcDate | null };

const KNOTS_TO_MPS = 1852 / 3600;
const KMH_TO_MPS = 1000 / 3600;

export function isGnssTalker(talker: string): talker is GnssTalker {
  return (GNSS_TALKERS as readonly string[]).includes(talker);
}

/** Decodes a sentence, or returns null for sentences and talkers the reader does not use. */
export function decodeSentence(s: NmeaSentence): DecodedSentence | null {
  if (!isGnssTalker(s.talker)) return null;
  const f = (i: number): string => s.fields[i] ?? '';
  switch (s.id) {
    case 'GGA':
      return {
        id: 'GGA',
        time: timeOfDay(f(0)),
        lat: coordinate(f(1), f(2), 2),
        lon: coordinate(f(3), f(4), 3),
        quality: integer(f(5)),
        sats: integer(f(6)),
        hdop: decimal(f(7)),
        altMSL: decimal(f(8)),
        geoidSep: decimal(f(10)),
      };
    case 'RMC': {
      const speed = decimal(f(6));
      return {
        id: 'RMC',
        time: timeOfDay(f(0)),
        valid: f(1) === 'A',
        lat: coordinate(f(2), f(3), 2),
        lon: coordinate(f(4), f(5), 3),
        speed: speed === null ? null : speed * KNOTS_TO_MPS,
        track: decimal(f(7)),
        date: ddmmyy(f(8)),
        modeIndicator: f(11) || null,
      };
    }
    case 'GNS':
      return {
        id: 'GNS',
        time: timeOfDay(f(0)),
        lat: coordinate(f(1), f(2), 2),
        lon: coordinate(f(3), f(4), 3),
        modeIndicator: f(5),
        sats: integer(f(6)),
        hdop: decimal(f(7)),
        altMSL: decimal(f(8)),
      };
    case 'GSA': {
      const mode = integer(f(1));
      return {
        id: 'GSA',
        fixMode: mode === 1 || mode === 2 || mode === 3 ? mode : null,
        used: s.fields
          .slice(2, 14)
          .map(integer)
          .filter((n): n is number => n !== null),
        pdop: decimal(f(14)),
        hdop: decimal(f(15)),
        vdop: decimal(f(16)),
      };
    }
    case 'GSV': {
      const satellites = [];
      for (let i = 3; i + 3 < s.fields.length + 1; i += 4) {
        const prn = integer(f(i));
        if (prn === null) continue;
        satellites.push({
          prn,
          elevation: decimal(f(i + 1)),
          azimuth: decimal(f(i + 2)),
          snr: decimal(f(i + 3)),
        });
      }
      return {
        id: 'GSV',
        total: integer(f(0)),
        index: integer(f(1)),
        inView: integer(f(2)),
        satellites,
      };
    }
    case 'VTG': {
      // NMEA 2.x: track,T,magtrack,M,knots,N,kmh,K[,mode]; some old receivers omit the unit letters.
      const unitLetters = f(1) === 'T' || f(3) === 'M' || f(5) === 'N';
      const kmh = unitLetters ? decimal(f(6)) : decimal(f(3));
      const knots = unitLetters ? decimal(f(4)) : decimal(f(2));
      return {
        id: 'VTG',
        track: decimal(f(0)),
        speed: kmh !== null ? kmh * KMH_TO_MPS : knots !== null ? knots * KNOTS_TO_MPS : null,
        modeIndicator: (unitLetters ? f(8) : '') || null,
      };
    }
    case 'GLL':
      return {
        id: 'GLL',
        lat: coordinate(f(0), f(1), 2),
        lon: coordinate(f(2), f(3), 3),
        time: timeOfDay(f(4)),
        valid: f(5) === 'A' && f(6) !== 'N',
        modeIndicator: f(6) || null,
      };
    case 'ZDA': {
      const day = integer(f(1));
      const month = integer(f(2));
      const year = integer(f(3));
      return {
        id: 'ZDA',
        time: timeOfDay(f(0)),
        date: day !== null && month !== null && year !== null ? utcDate(year, month, day) : null,
      };
    }
    default:
      return null;
  }
}

function decimal(text: string): number | null {
  if (!/^[-+]?(\d+\.?\d*|\.\d+)$/.test(text)) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

function integer(text: string): number | null {
  return /^\d{1,9}$/.test(text) ? Number(text) : null;
}

/** `ddmm.mmmm` / `dddmm.mmmm` with a hemisphere letter → signed degrees (NMEA 0183 §6.2). */
function coordinate(text: string, hemisphere: string, degreeDigits: 2 | 3): number | null {
  const match = /^(\d+)(\d\d(?:\.\d*)?)$/.exec(text);
  if (!match || match[1]!.length > degreeDigits) return null;
  const degrees = Number(match[1]);
  const minutes = Number(match[2]);
  if (minutes >= 60) return null;
  const value = degrees + minutes / 60;
  if (value > (degreeDigits === 2 ? 90 : 180)) return null;
  if (hemisphere === 'S' || hemisphere === 'W') return -value;
  if (hemisphere === 'N' || hemisphere === 'E') return value;
  return null;
}

/** `hhmmss[.sss]` → ms since midnight, rounded to the millisecond. */
function timeOfDay(text: string): TimeOfDay | null {
  const match = /^(\d\d)(\d\d)(\d\d(?:\.\d*)?)$/.exec(text);
  if (!match) return null;
  const h = Number(match[1]);
  const m = Number(match[2]);
  const sec = Number(match[3]);
  // A leap second shows as 60.
  if (h > 23 || m > 59 || sec >= 61) return null;
  return Math.round((h * 3600 + m * 60 + sec) * 1000);
}

/** RMC's `ddmmyy`; two-digit years 80–99 are 1980–1999, the rest 2000–2079 (the GPS era). */
function ddmmyy(text: string): UtcDate | null {
  const match = /^(\d\d)(\d\d)(\d\d)$/.exec(text);
  if (!match) return null;
  const yy = Number(match[3]);
  return utcDate(yy >= 80 ? 1900 + yy : 2000 + yy, Number(match[2]), Number(match[1]));
}

function utcDate(year: number, month: number, day: number): UtcDate | null {
  if (month < 1 || month > 12 || day < 1 || day > 31 || year < 1980 || year > 2200) return null;
  const ms = Date.UTC(year, month - 1, day);
  // Reject 31 February and friends instead of rolling them over.
  return new Date(ms).getUTCDate() === day ? ms : null;
}
