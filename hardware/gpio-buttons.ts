/** Buttons on real GPIO lines: edges from a GpioDriver through one PressClassifier per button. */
import { EventEmitter } from 'node:events';
import type { ButtonName, ButtonPress, ButtonSource } from './buttons.ts';
import type { GpioDriver, GpioEdge, PinConfig } from './gpio.ts';
import { DEFAULT_PRESS_TIMING, PressClassifier, type PressTiming } from './press-classifier.ts';

export interface GpioButtonsOptions {
  driver: GpioDriver;
  /** button → pin, from the profile; buttons without a pin are simply absent */
  pins: Partial<Record<ButtonName, PinConfig>>;
  /** default DEFAULT_PRESS_TIMING (30 / 1500 / 400 ms) */
  timing?: PressTiming;
  /** system clock, default Date.now */
  now?: () => number;
}

/** Emits 'press' (ButtonPress). */
export class GpioButtons extends EventEmitter implements ButtonSource {
  readonly #options: GpioButtonsOptions;
  readonly #now: () => number;
  readonly #byLine = new Map<number, { name: ButtonName; pin: PinConfig; classifier: PressClassifier }>();
  #timer: NodeJS.Timeout | null = null;
  #running = false;

  constructor(options: GpioButtonsOptions) {
    super();
    this.#options = options;
    this.#now = options.now ?? Date.now;
    for (const [name, pin] of Object.entries(options.pins) as [ButtonName, PinConfig | undefined][]) {
      if (!pin) continue;
      this.#byLine.set(pin.line, {
        name,
        pin,
        classifier: new PressClassifier(name, options.timing ?? DEFAULT_PRESS_TIMING),
      });
    }
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    await this.#options.driver.watch([...this.#byLine.keys()], (edge) => this.#edge(edge));
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#options.driver.close();
  }

  #edge(edge: GpioEdge): void {
    const button = this.#byLine.get(edge.line);
    if (!button || !this.#running) return;
    const pressed = button.pin.activeLow ? edge.level === 0 : edge.level === 1;
    this.#emit(button.classifier.edge(pressed, edge.at));
    this.#schedule();
  }

  #tick(): void {
    this.#timer = null;
    if (!this.#running) return;
    const now = this.#now();
    for (const { classifier } of this.#byLine.values()) this.#emit(classifier.tick(now));
    this.#schedule();
  }

  #schedule(): void {
    const deadlines = [...this.#byLine.values()]
      .map(({ classifier }) => classifier.nextDeadline())
      .filter((d): d is number => d !== null);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (deadlines.length === 0) return;
    const wait = Math.max(0, Math.min(...deadlines) - this.#now());
    this.#timer = setTimeout(() => this.#tick(), wait);
  }

  #emit(presses: ButtonPress[]): void {
    for (const press of presses) this.emit('press', press);
  }
}
