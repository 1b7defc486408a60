/**
 * Outputs the officer notices: LEDs (GA/T 947 colours: power green, audio-only yellow, video red),
 * vibration and buzzer. Patterns, not raw pin levels, so a driver can blink without its caller.
 */
export type IndicatorName = 'led-power' | 'led-audio' | 'led-video' | 'led-status' | 'vibration' | 'buzzer';
export type IndicatorPattern =
  'off' | 'on' | 'blink-slow' | 'blink-fast' | { pulseMs: number; times: number };

export interface Indicators {
  set(name: IndicatorName, pattern: IndicatorPattern): void;
  /** The pattern last set, 'off' before any; a driver playing a pulse train in real time reads 'off' once it ends. */
  state(name: IndicatorName): IndicatorPattern;
  close(): Promise<void>;
}
