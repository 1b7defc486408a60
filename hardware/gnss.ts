/**
 * What the rest of the device knows of GNSS: fixes in GPSD's names and units (degrees, metres,
 * m/s, ISO 8601 UTC). Drivers: a serial NMEA reader (real) and a simulated one.
 */
import type { EventEmitter } from 'node:events';
import type { GnssCounters } from './gnss-reader.ts';

export interface GnssFix {
  /** 1 no fix, 2 2D, 3 3D (GPSD's TPV mode) */
  mode: 1 | 2 | 3;
  /** ISO 8601 UTC with milliseconds, when the receiver gave date and time */
  time: string | null;
  lat: number | null;
  lon: number | null;
  altMSL: number | null;
  /** m/s */
  speed: number | null;
  /** degrees true */
  track: number | null;
  sats: number | null;
  hdop: number | null;
}

export interface GnssSource extends EventEmitter {
  /** The latest fix, or null before the first one. */
  readonly fix: GnssFix | null;
  /** GNSS time minus system time in ms from the latest timed sentence, or null when unknown. */
  readonly clockOffsetMs: number | null;
  /** sentences read and bytes discarded by reason (NMEA drivers), for status and diagnostics */
  readonly counters?: GnssCounters;
  start(): Promise<void>;
  stop(): Promise<void>;
  // events: 'fix' (GnssFix), 'error' is never emitted for bad input: it is counted instead.
}
