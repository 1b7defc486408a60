/**
 * The GPIO interface the button and indicator drivers sit on. Three implementations: onoff
 * (sysfs, gpio-onoff.ts), libgpiod tools (gpio-gpiod.ts) and the simulation (gpio-sim.ts, which
 * implements ButtonSource and Indicators directly). Levels are physical; active-low is applied by
 * the button and indicator layers from the profile's pins.
 */
export type GpioDriverName = 'sim' | 'onoff' | 'gpiod';
export type Level = 0 | 1;

export interface GpioEdge {
  line: number;
  /** the level after the edge */
  level: Level;
  /** when it happened, ms since the epoch (system clock), as precise as the driver knows */
  at: number;
}

export interface GpioDriver {
  readonly name: Exclude<GpioDriverName, 'sim'>;
  /** Reports every edge on these input lines until close(). */
  watch(lines: number[], onEdge: (edge: GpioEdge) => void): Promise<void>;
  /** Drives an output line to a physical level. */
  write(line: number, level: Level): Promise<void>;
  close(): Promise<void>;
}

/** A profile pin: line number and polarity (profile hardware.buttons / hardware.indicators). */
export interface PinConfig {
  line: number;
  activeLow: boolean;
}

/** Blink half-periods for the indicator patterns. */
export const BLINK_SLOW_MS = 500;
export const BLINK_FAST_MS = 125;
