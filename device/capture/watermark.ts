/**
 * The text burned into every frame before encoding (issue 3 §3): local time in ISO 8601 with the
 * zone offset, device number, officer number, GNSS position or NO FIX, and TIME UNSET while the
 * clock is not trusted. Pure: the caller passes the time, zone and position.
 */

export interface WatermarkFix {
  /** degrees, north positive */
  lat: number;
  /** degrees, east positive */
  lon: number;
}

export interface WatermarkContext {
  /** epoch ms */
  now: number;
  /** IANA zone, e.g. 'Asia/Shanghai'; default 'UTC' */
  timeZone?: string;
  device: string;
  officer: string;
  /** null or undefined: no fix */
  fix?: WatermarkFix | null;
  /** false until the clock was set from GNSS, the gateway or NTP */
  clockTrusted: boolean;
}

export const DEFAULT_WATERMARK_TEMPLATE = '{time} {device} {officer} {position} {clock}';
export const NO_FIX = 'NO FIX';
export const TIME_UNSET = 'TIME UNSET';

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      timeZoneName: 'longOffset',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** ISO 8601 local time with the zone's offset, to the second: 2026-11-23T18:05:01+08:00. */
export function isoLocalTime(epochMs: number, timeZone = 'UTC'): string {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(epochMs))) parts[p.type] = p.value;
  // longOffset gives 'GMT+08:00', 'GMT-03:30', or plain 'GMT' for a zero offset.
  const zone = parts.timeZoneName ?? 'GMT';
  const offset = zone === 'GMT' ? '+00:00' : zone.slice(3);
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`;
}

/** 28.22783N 112.93885E — five decimals (about 1 m), hemisphere letters instead of signs. */
export function formatPosition(fix: WatermarkFix | null | undefined): string {
  if (!fix || !Number.isFinite(fix.lat) || !Number.isFinite(fix.lon)) return NO_FIX;
  const lat = `${Math.abs(fix.lat).toFixed(5)}${fix.lat >= 0 ? 'N' : 'S'}`;
  const lon = `${Math.abs(fix.lon).toFixed(5)}${fix.lon >= 0 ? 'E' : 'W'}`;
  return `${lat} ${lon}`;
}

/**
 * Fills the template's placeholders {time} {device} {officer} {position} {clock}. {clock} is
 * TIME UNSET while the clock is not trusted and empty otherwise; the spaces around an empty
 * placeholder collapse. An untrusted clock still shows its time: the flag says not to rely on it.
 */
export function watermarkText(template: string, context: WatermarkContext): string {
  const clock = context.clockTrusted ? '' : TIME_UNSET;
  const values: Record<string, string> = {
    time: isoLocalTime(context.now, context.timeZone ?? 'UTC'),
    device: context.device,
    officer: context.officer,
    position: formatPosition(context.fix),
    clock,
  };
  let text = template.replace(
    /\{(time|device|officer|position|clock)\}/g,
    (_, key: string) => values[key] ?? '',
  );
  // A template without {clock} must still show the flag (issue 3 §3: a visible TIME UNSET).
  if (!context.clockTrusted && !template.includes('{clock}')) text = `${text} ${TIME_UNSET}`;
  return text
    .split('\n')
    .map((line) => line.replace(/ {2,}/g, ' ').trim())
    .join('\n');
}
