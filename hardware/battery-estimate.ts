/**
 * Minutes of recording left, and the low-battery alarm derived from it (pure).
 * GA/T 947: the low-battery warning must leave 5–30 minutes of recording; the alarm therefore
 * follows the estimate, not a fixed percentage (issue 4 item 5).
 */
import { RecorderError } from '../protocol/errors.ts';
import type { BatteryReading } from './battery.ts';

/** Draw of a body-worn recorder while recording (1080p H.264, GNSS, Wi-Fi off); a profile may override. */
export const DEFAULT_RECORDING_DRAW_W = 2.5;

/**
 * Minutes left from the remaining energy at a draw of `drawW` watts. The draw used is the larger
 * of the measured one and the recording draw, so an idle device does not promise hours of recording.
 */
export function estimateMinutes(
  remainingWh: number | null,
  measuredDrawW: number | null,
  recordingDrawW: number,
): number | null {
  if (remainingWh === null || !Number.isFinite(remainingWh) || remainingWh < 0) return null;
  const draw = Math.max(measuredDrawW ?? 0, recordingDrawW);
  if (!(draw > 0)) return null;
  return Math.floor((remainingWh / draw) * 60);
}

export interface LowBatteryOptions {
  /** minutes of recording that must remain when the alarm sounds; GA/T 947: 5–30. Default 5 */
  minMinutes?: number;
}

export interface LowBatteryVerdict {
  alarm: boolean;
  minutesLeft: number | null;
  reason: 'ok' | 'low' | 'external-power' | 'unknown';
}

/** Alarm once the estimated minutes of recording left reach the threshold (on external power: never). */
export function lowBatteryAlarm(reading: BatteryReading, options: LowBatteryOptions = {}): LowBatteryVerdict {
  const minMinutes = options.minMinutes ?? 5;
  if (!(minMinutes >= 5 && minMinutes <= 30)) {
    throw new RecorderError(
      'HARDWARE_CONFIG_INVALID',
      `the low-battery alarm threshold must be 5 to 30 minutes of recording (GA/T 947), got ${minMinutes}`,
      { minMinutes },
    );
  }
  const minutesLeft = reading.minutesLeft;
  if (reading.externalPower) return { alarm: false, minutesLeft, reason: 'external-power' };
  if (minutesLeft === null) return { alarm: false, minutesLeft, reason: 'unknown' };
  // At the threshold, not below it: the alarm must come while minMinutes still remain.
  return minutesLeft <= minMinutes
    ? { alarm: true, minutesLeft, reason: 'low' }
    : { alarm: false, minutesLeft, reason: 'ok' };
}
