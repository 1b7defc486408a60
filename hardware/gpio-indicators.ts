/** LEDs, vibration motor and buzzer on real GPIO lines, with blinking done here, not by callers. */
import type { IndicatorName, IndicatorPattern, Indicators } from './indicators.ts';
import { BLINK_FAST_MS, BLINK_SLOW_MS, type GpioDriver, type Level, type PinConfig } from './gpio.ts';

export interface GpioIndicatorsOptions {
  driver: GpioDriver;
  /** indicator → pin from the profile; indicators without a pin only remember their pattern */
  pins: Partial<Record<IndicatorName, PinConfig>>;
  /** called when a write to the driver fails; default: ignore (the next pattern retries) */
  onError?: (error: unknown) => void;
}

export class GpioIndicators implements Indicators {
  readonly #options: GpioIndicatorsOptions;
  readonly #patterns = new Map<IndicatorName, IndicatorPattern>();
  readonly #timers = new Map<IndicatorName, NodeJS.Timeout>();

  constructor(options: GpioIndicatorsOptions) {
    this.#options = options;
  }

  state(name: IndicatorName): IndicatorPattern {
    return this.#patterns.get(name) ?? 'off';
  }

  set(name: IndicatorName, pattern: IndicatorPattern): void {
    this.#patterns.set(name, pattern);
    const timer = this.#timers.get(name);
    if (timer) clearTimeout(timer);
    this.#timers.delete(name);
    if (pattern === 'off' || pattern === 'on') {
      void this.#drive(name, pattern === 'on');
      return;
    }
    const [halfPeriod, toggles] =
      pattern === 'blink-slow'
        ? [BLINK_SLOW_MS, Infinity]
        : pattern === 'blink-fast'
          ? [BLINK_FAST_MS, Infinity]
          : [pattern.pulseMs, pattern.times * 2];
    let on = true;
    let done = 0;
    const step = () => {
      void this.#drive(name, on);
      done++;
      if (done >= toggles) {
        this.#timers.delete(name);
        // A pulse train ends as 'off'.
        this.#patterns.set(name, 'off');
        return;
      }
      on = !on;
      this.#timers.set(name, setTimeout(step, halfPeriod));
    };
    step();
  }

  async close(): Promise<void> {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    for (const name of this.#patterns.keys()) this.#patterns.set(name, 'off');
    await Promise.all(
      (Object.keys(this.#options.pins) as IndicatorName[]).map((name) => this.#drive(name, false)),
    );
    await this.#options.driver.close();
  }

  #drive(name: IndicatorName, on: boolean): Promise<void> {
    const pin = this.#options.pins[name];
    if (!pin) return Promise.resolve();
    const level: Level = on !== pin.activeLow ? 1 : 0;
    return this.#options.driver
      .write(pin.line, level)
      .catch((error: unknown) => this.#options.onError?.(error));
  }
}
