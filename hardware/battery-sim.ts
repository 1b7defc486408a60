/**
 * A simulated battery on an injected clock: drains at the recording draw while recording, at the
 * idle draw otherwise, and charges on external power (docked, R7). STYLE.md: exactly the controls
 * a test needs — setRecording, setExternalPower, setCapacity.
 */
import type { Battery, BatteryReading } from './battery.ts';
import { DEFAULT_RECORDING_DRAW_W, estimateMinutes } from './battery-estimate.ts';

export interface SimBatteryOptions {
  /** default 10 Wh (a 2700 mAh 3.7 V cell) */
  capacityWh?: number;
  /** default DEFAULT_RECORDING_DRAW_W */
  recordingDrawW?: number;
  /** default 0.4 W */
  idleDrawW?: number;
  /** default 10 W (a 2 A USB dock) */
  chargeW?: number;
  /** percent at start, default 100 */
  initialPercent?: number;
  /** default Date.now */
  now?: () => number;
}

export class SimBattery implements Battery {
  readonly #capacityWh: number;
  readonly #recordingDrawW: number;
  readonly #idleDrawW: number;
  readonly #chargeW: number;
  readonly #now: () => number;
  #energyWh: number;
  #at: number;
  #recording = false;
  #externalPower = false;

  constructor(options: SimBatteryOptions = {}) {
    this.#capacityWh = options.capacityWh ?? 10;
    this.#recordingDrawW = options.recordingDrawW ?? DEFAULT_RECORDING_DRAW_W;
    this.#idleDrawW = options.idleDrawW ?? 0.4;
    this.#chargeW = options.chargeW ?? 10;
    this.#now = options.now ?? Date.now;
    this.#energyWh = (this.#capacityWh * (options.initialPercent ?? 100)) / 100;
    this.#at = this.#now();
  }

  setRecording(recording: boolean): void {
    this.#advance();
    this.#recording = recording;
  }

  setExternalPower(present: boolean): void {
    this.#advance();
    this.#externalPower = present;
  }

  /** Sets the charge to a percentage (0–100) now. */
  setCapacity(percent: number): void {
    this.#advance();
    this.#energyWh = (this.#capacityWh * Math.min(100, Math.max(0, percent))) / 100;
  }

  async read(): Promise<BatteryReading> {
    this.#advance();
    const soc = this.#energyWh / this.#capacityWh;
    const full = soc >= 0.999;
    const draw = this.#recording ? this.#recordingDrawW : this.#idleDrawW;
    const status: BatteryReading['status'] = this.#externalPower
      ? full
        ? 'Full'
        : 'Charging'
      : 'Discharging';
    return {
      capacity: Math.round(soc * 100),
      status,
      // A Li-ion cell from 3.3 V empty to 4.2 V full, roughly linear in the middle.
      voltageV: Math.round((3.3 + 0.9 * soc) * 1000) / 1000,
      powerW: status === 'Discharging' ? draw : status === 'Charging' ? -this.#chargeW : 0,
      health: 'Good',
      tempC: this.#recording ? 35 : 28,
      minutesLeft: estimateMinutes(this.#energyWh, this.#externalPower ? null : draw, this.#recordingDrawW),
      externalPower: this.#externalPower,
    };
  }

  #advance(): void {
    const now = this.#now();
    const hours = Math.max(0, now - this.#at) / 3_600_000;
    this.#at = now;
    const draw = this.#recording ? this.#recordingDrawW : this.#idleDrawW;
    const net = this.#externalPower ? this.#chargeW - draw : -draw;
    this.#energyWh = Math.min(this.#capacityWh, Math.max(0, this.#energyWh + net * hours));
  }
}
