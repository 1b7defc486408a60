/**
 * Builds the hardware a profile names: one driver per section, each logged at start-up
 * (`rec:hardware`, one line per part), and never a silent fallback to a simulation when real
 * hardware was asked for (STYLE.md): a driver that cannot run is a coded error naming the others.
 */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { RecorderError } from '../protocol/errors.ts';
import type { Profile } from '../protocol/schemas/profile.ts';
import type { Battery } from './battery.ts';
import { SimBattery, type SimBatteryOptions } from './battery-sim.ts';
import { SysfsBattery } from './battery-sysfs.ts';
import type { ButtonName, ButtonSource } from './buttons.ts';
import type { GnssSource } from './gnss.ts';
import { SerialGnss } from './gnss-serial.ts';
import { SimGnss, type SimGnssOptions } from './gnss-sim.ts';
import type { GpioDriver, GpioDriverName, PinConfig } from './gpio.ts';
import { GpioButtons } from './gpio-buttons.ts';
import { GpiodDriver, type ToolExit } from './gpio-gpiod.ts';
import { GpioIndicators } from './gpio-indicators.ts';
import { OnoffDriver } from './gpio-onoff.ts';
import { SimButtons, SimIndicators } from './gpio-sim.ts';
import type { IndicatorName, Indicators } from './indicators.ts';
import type { PressTiming } from './press-classifier.ts';
import type { Storage } from './storage.ts';
import { StatfsStorage } from './storage-statfs.ts';

export type HardwareProfile = Profile['hardware'];

export interface HardwareOptions {
  /** receives one `rec:hardware ...` line per event; default: written to stdout */
  log?: (line: string) => void;
  /** system clock for every driver; default Date.now */
  now?: () => number;
  /** simulated GNSS: a log to replay and its speed, or a fixed fix; default DEFAULT_SIM_FIX every second */
  simGnss?: SimGnssOptions;
  simBattery?: SimBatteryOptions;
  gpiod?: {
    /** default 'gpiomon' / 'gpioset' on PATH */
    gpiomon?: string;
    gpioset?: string;
    /** refuse to start when /dev/<chip> does not exist; default true */
    requireChip?: boolean;
  };
  /** watts drawn while recording, for the minutes-left estimate; default DEFAULT_RECORDING_DRAW_W */
  recordingDrawW?: number;
}

export interface Hardware {
  buttons: ButtonSource;
  indicators: Indicators;
  /** null when the profile says `gnss.driver: none` (a fixed camera without a receiver) */
  gnss: GnssSource | null;
  battery: Battery;
  /** which driver runs for each part, as logged */
  drivers: {
    gpio: GpioDriverName;
    gnss: HardwareProfile['gnss']['driver'];
    battery: HardwareProfile['battery']['driver'];
  };
}

const GPIO_DRIVERS = ['sim', 'onoff', 'gpiod'] as const;
const GNSS_DRIVERS = ['sim', 'serial', 'none'] as const;
const BATTERY_DRIVERS = ['sim', 'sysfs'] as const;

export async function createHardware(hw: HardwareProfile, options: HardwareOptions = {}): Promise<Hardware> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const say = (message: string) => log(`rec:hardware ${message}`);
  const now = options.now ?? Date.now;

  const gpio = known('hardware.gpio.driver', hw.gpio.driver, GPIO_DRIVERS);
  const gnssDriver = known('hardware.gnss.driver', hw.gnss.driver, GNSS_DRIVERS);
  const batteryDriver = known('hardware.battery.driver', hw.battery.driver, BATTERY_DRIVERS);
  const timing: PressTiming = hw.press;
  const buttonPins = pins<ButtonName>(hw.buttons);
  const indicatorPins = pins<IndicatorName>(hw.indicators);

  // Every check that can fail runs before anything starts, so a refused profile leaves nothing behind.
  let buttons: ButtonSource;
  let indicators: Indicators;
  if (gpio === 'sim') {
    buttons = new SimButtons({ timing, now });
    indicators = new SimIndicators();
  } else {
    const makeDriver =
      gpio === 'onoff' ? () => OnoffDriver.create({ now }) : () => gpiodDriver(hw, options, now, say);
    buttons = new GpioButtons({ driver: await makeDriver(), pins: buttonPins, timing, now });
    indicators = new GpioIndicators({
      driver: await makeDriver(),
      pins: indicatorPins,
      onError: (error) => say(`indicators: ${(error as Error).message}`),
    });
  }

  let battery: Battery;
  if (batteryDriver === 'sysfs') {
    if (!existsSync(hw.battery.path)) {
      throw new RecorderError(
        'BATTERY_UNAVAILABLE',
        `hardware.battery.path ${hw.battery.path} does not exist; point it at a /sys/class/power_supply/* directory, or set hardware.battery.driver to "sim"`,
        { path: hw.battery.path, alternatives: ['sim'] },
      );
    }
    battery = new SysfsBattery({ path: hw.battery.path, recordingDrawW: options.recordingDrawW });
  } else {
    battery = new SimBattery({ ...options.simBattery, now, recordingDrawW: options.recordingDrawW });
  }

  let gnss: GnssSource | null = null;
  if (gnssDriver === 'serial') gnss = new SerialGnss({ port: hw.gnss.port, baud: hw.gnss.baud, now });
  else if (gnssDriver === 'sim') gnss = new SimGnss({ ...options.simGnss, now });

  const describePins = (map: Record<string, PinConfig>) =>
    Object.entries(map)
      .map(([name, p]) => `${name}=${p.line}${p.activeLow ? ' active-low' : ''}`)
      .join(', ') || 'no pins';
  const chip = gpio === 'gpiod' ? ` on ${hw.gpio.chip}` : '';
  say(
    `buttons: ${gpio}${chip} (${describePins(buttonPins)}; long ${timing.longMs} ms, double ${timing.doubleMs} ms, debounce ${timing.debounceMs} ms)`,
  );
  say(`indicators: ${gpio}${chip} (${describePins(indicatorPins)})`);
  if (gnssDriver === 'serial') {
    const present = existsSync(hw.gnss.port) ? '' : '; the port does not exist yet, retrying with backoff';
    say(`gnss: serial ${hw.gnss.port} at ${hw.gnss.baud} baud${present}`);
  } else if (gnssDriver === 'sim') {
    const what = options.simGnss?.file
      ? `replaying ${options.simGnss.file} ${paceText(options.simGnss.speed ?? 1)}`
      : options.simGnss?.text
        ? 'replaying a log'
        : 'fixed position';
    say(`gnss: sim (${what})`);
  } else {
    say('gnss: none');
  }
  say(`battery: ${batteryDriver}${batteryDriver === 'sysfs' ? ` ${hw.battery.path}` : ''}`);

  return { buttons, indicators, gnss, battery, drivers: { gpio, gnss: gnssDriver, battery: batteryDriver } };
}

/** Storage of the evidence volume (statfs) for the profile's storage.evidenceDir. */
export function createStorage(evidenceDir: string): Storage {
  return new StatfsStorage(evidenceDir);
}

function paceText(speed: number): string {
  return Number.isFinite(speed) ? `at ${speed}x receiver pace` : 'as fast as possible';
}

function known<T extends string>(path: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new RecorderError(
    'HARDWARE_DRIVER_UNKNOWN',
    `${path} is "${value}"; use one of ${allowed.map((a) => `"${a}"`).join(', ')}`,
    { path, value, alternatives: [...allowed] },
  );
}

function pins<N extends string>(
  map: Partial<Record<N, { line: number; activeLow?: boolean }>>,
): Record<N, PinConfig> {
  const out = {} as Record<N, PinConfig>;
  for (const [name, pin] of Object.entries(map) as [N, { line: number; activeLow?: boolean } | undefined][]) {
    if (pin) out[name] = { line: pin.line, activeLow: pin.activeLow ?? false };
  }
  return out;
}

async function gpiodDriver(
  hw: HardwareProfile,
  options: HardwareOptions,
  now: () => number,
  say: (message: string) => void,
): Promise<GpioDriver> {
  const gpiomon = options.gpiod?.gpiomon ?? 'gpiomon';
  const gpioset = options.gpiod?.gpioset ?? 'gpioset';
  for (const tool of [gpiomon, gpioset]) {
    if (!onPath(tool)) {
      throw new RecorderError(
        'GPIO_UNAVAILABLE',
        `${tool} is not installed: install Debian package gpiod, or set hardware.gpio.driver to "onoff" (sysfs) or "sim"`,
        { driver: 'gpiod', tool, alternatives: ['onoff', 'sim'] },
      );
    }
  }
  const chip = hw.gpio.chip;
  const device = chip.startsWith('/') ? chip : /^\d+$/.test(chip) ? `/dev/gpiochip${chip}` : `/dev/${chip}`;
  if ((options.gpiod?.requireChip ?? true) && !existsSync(device)) {
    throw new RecorderError(
      'GPIO_UNAVAILABLE',
      `no GPIO chip ${device} on this machine (gpiodetect lists them); fix hardware.gpio.chip, or set hardware.gpio.driver to "onoff" (sysfs) or "sim"`,
      { driver: 'gpiod', chip, alternatives: ['onoff', 'sim'] },
    );
  }
  const driver = new GpiodDriver({ chip, gpiomon, gpioset, now });
  driver.on('tool-exit', (e: ToolExit) =>
    say(
      `gpiod: ${e.tool} exited (${e.signal ?? `code ${e.code}`})${e.stderr ? `: ${e.stderr}` : ''}; restarting in ${e.restartInMs} ms`,
    ),
  );
  return driver;
}

function onPath(command: string): boolean {
  if (command.includes('/')) return existsSync(command);
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, command)));
}
