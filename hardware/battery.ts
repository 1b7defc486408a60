/** Battery readings from Linux power_supply attributes, or a simulated battery. */
export interface BatteryReading {
  /** percent 0..100, null when not reported */
  capacity: number | null;
  status: 'Charging' | 'Discharging' | 'Full' | 'Not charging' | 'Unknown';
  voltageV: number | null;
  /** positive while discharging */
  powerW: number | null;
  health: string | null;
  tempC: number | null;
  /** minutes of recording left at the present draw, null when it cannot be estimated */
  minutesLeft: number | null;
  /** external power present (docked or on a charger) */
  externalPower: boolean;
  /** attributes that were present but unreadable, as `name: what was wrong` (garbage is never thrown) */
  problems?: string[];
}

export interface Battery {
  read(): Promise<BatteryReading>;
}
