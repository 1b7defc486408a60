/**
 * GPIO through sysfs with onoff. Sysfs GPIO is deprecated since Linux 4.8 and absent where the
 * kernel lacks CONFIG_GPIO_SYSFS (STACK-NOTES "Hardware"): then this driver refuses to start with
 * an error naming the drivers that do work, instead of falling back silently (STYLE.md).
 */
import { RecorderError } from '../protocol/errors.ts';
import type { GpioDriver, GpioEdge, Level } from './gpio.ts';

interface OnoffGpio {
  watch(cb: (err: Error | null | undefined, value: Level) => void): void;
  writeSync(value: Level): void;
  unexport(): void;
}
interface OnoffModule {
  Gpio: {
    accessible: boolean;
    new (gpio: number, direction: 'in' | 'out', edge?: 'both'): OnoffGpio;
  };
}

export class OnoffDriver implements GpioDriver {
  readonly name = 'onoff' as const;
  readonly #module: OnoffModule;
  readonly #inputs: OnoffGpio[] = [];
  readonly #outputs = new Map<number, OnoffGpio>();
  readonly #now: () => number;

  private constructor(module: OnoffModule, now: () => number) {
    this.#module = module;
    this.#now = now;
  }

  /** Loads onoff lazily; throws GPIO_UNAVAILABLE when sysfs GPIO is absent. */
  static async create(options: { now?: () => number } = {}): Promise<OnoffDriver> {
    const module = (await import('onoff')) as unknown as OnoffModule;
    if (!module.Gpio.accessible) {
      throw new RecorderError(
        'GPIO_UNAVAILABLE',
        'sysfs GPIO (/sys/class/gpio) is not available on this kernel, so the onoff driver cannot run; ' +
          'set hardware.gpio.driver to "gpiod" (libgpiod tools, Debian package gpiod) or "sim" (simulated buttons and LEDs)',
        { driver: 'onoff', alternatives: ['gpiod', 'sim'] },
      );
    }
    return new OnoffDriver(module, options.now ?? Date.now);
  }

  async watch(lines: number[], onEdge: (edge: GpioEdge) => void): Promise<void> {
    for (const line of lines) {
      const gpio = new this.#module.Gpio(line, 'in', 'both');
      gpio.watch((err, value) => {
        if (!err) onEdge({ line, level: value, at: this.#now() });
      });
      this.#inputs.push(gpio);
    }
  }

  async write(line: number, level: Level): Promise<void> {
    let gpio = this.#outputs.get(line);
    if (!gpio) {
      gpio = new this.#module.Gpio(line, 'out');
      this.#outputs.set(line, gpio);
    }
    gpio.writeSync(level);
  }

  async close(): Promise<void> {
    for (const gpio of [...this.#inputs, ...this.#outputs.values()]) gpio.unexport();
    this.#inputs.length = 0;
    this.#outputs.clear();
  }
}
