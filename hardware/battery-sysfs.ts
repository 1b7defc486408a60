/**
 * The real battery: Linux power_supply attributes (Documentation/ABI/testing/sysfs-class-power)
 * from the profile's path, e.g. /sys/class/power_supply/BAT0. Units there: µV, µA, µW, µWh, µAh,
 * tenths of °C. A missing attribute is null; a garbage one is null plus a line in `problems`.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RecorderError } from '../protocol/errors.ts';
import type { Battery, BatteryReading } from './battery.ts';
import { DEFAULT_RECORDING_DRAW_W, estimateMinutes } from './battery-estimate.ts';

export interface SysfsBatteryOptions {
  /** the power_supply directory (profile hardware.battery.path) */
  path: string;
  /** watts drawn while recording, the floor of the estimate; default DEFAULT_RECORDING_DRAW_W */
  recordingDrawW?: number;
}

const STATUSES = ['Charging', 'Discharging', 'Full', 'Not charging', 'Unknown'] as const;

export class SysfsBattery implements Battery {
  readonly #path: string;
  readonly #recordingDrawW: number;

  constructor(options: SysfsBatteryOptions) {
    this.#path = options.path;
    this.#recordingDrawW = options.recordingDrawW ?? DEFAULT_RECORDING_DRAW_W;
  }

  /** Throws BATTERY_UNAVAILABLE when the directory is missing (a wrong profile path). */
  async read(): Promise<BatteryReading> {
    if (!existsSync(this.#path)) {
      throw new RecorderError(
        'BATTERY_UNAVAILABLE',
        `no power_supply directory at ${this.#path}; set hardware.battery.path in the profile (ls /sys/class/power_supply) or use the "sim" battery driver`,
        { path: this.#path, alternatives: ['sim'] },
      );
    }
    const problems: string[] = [];
    const text = async (name: string): Promise<string | null> => {
      try {
        return (await readFile(join(this.#path, name), 'utf8')).trim();
      } catch {
        return null;
      }
    };
    const int = async (name: string, min = -Infinity, max = Infinity): Promise<number | null> => {
      const raw = await text(name);
      if (raw === null) return null;
      if (!/^-?\d{1,15}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
        problems.push(`${name}: not a number in range (${JSON.stringify(raw.slice(0, 40))})`);
        return null;
      }
      return Number(raw);
    };
    const capacity = await int('capacity', 0, 100);
    const rawStatus = await text('status');
    let status: BatteryReading['status'] = 'Unknown';
    if (rawStatus !== null) {
      if ((STATUSES as readonly string[]).includes(rawStatus)) status = rawStatus as BatteryReading['status'];
      else problems.push(`status: unknown value (${JSON.stringify(rawStatus.slice(0, 40))})`);
    }
    const voltageUV = await int('voltage_now', 0);
    const currentUA = await int('current_now');
    const powerUW = await int('power_now');
    const energyUWh = await int('energy_now', 0);
    const energyFullUWh = await int('energy_full', 0);
    const chargeUAh = await int('charge_now', 0);
    const chargeFullUAh = await int('charge_full', 0);
    const tempDeci = await int('temp');
    const health = await text('health');

    const voltageV = voltageUV === null ? null : voltageUV / 1e6;
    const discharging = status === 'Discharging';
    // Drivers disagree on the sign of current_now and power_now: while discharging take the magnitude.
    let powerW: number | null = null;
    if (powerUW !== null) powerW = Math.abs(powerUW) / 1e6;
    else if (currentUA !== null && voltageV !== null) powerW = (Math.abs(currentUA) / 1e6) * voltageV;
    if (powerW !== null && !discharging) powerW = status === 'Charging' ? -powerW : 0;

    let remainingWh: number | null = null;
    if (energyUWh !== null) remainingWh = energyUWh / 1e6;
    else if (chargeUAh !== null && voltageV !== null) remainingWh = (chargeUAh / 1e6) * voltageV;
    else if (capacity !== null) {
      const fullWh =
        energyFullUWh !== null
          ? energyFullUWh / 1e6
          : chargeFullUAh !== null && voltageV !== null
            ? (chargeFullUAh / 1e6) * voltageV
            : null;
      if (fullWh !== null) remainingWh = (fullWh * capacity) / 100;
    }

    const reading: BatteryReading = {
      capacity,
      status,
      voltageV,
      powerW,
      health: health || null,
      tempC: tempDeci === null ? null : tempDeci / 10,
      minutesLeft: estimateMinutes(remainingWh, discharging ? powerW : null, this.#recordingDrawW),
      externalPower: status === 'Charging' || status === 'Full' || status === 'Not charging',
    };
    if (problems.length > 0) reading.problems = problems;
    return reading;
  }
}
