/**
 * Simulated GPIO: buttons a test presses and indicators a test reads. SimButtons feeds synthetic
 * edges through the same PressClassifier as the real drivers, on its own synthetic clock, so a
 * long press takes no real time. STYLE.md: the controls a test needs and nothing more.
 */
import { EventEmitter } from 'node:events';
import type { ButtonName, ButtonPress, ButtonSource } from './buttons.ts';
import type { IndicatorName, IndicatorPattern, Indicators } from './indicators.ts';
import { DEFAULT_PRESS_TIMING, PressClassifier, type PressTiming } from './press-classifier.ts';

export interface SimButtonsOptions {
  /** default DEFAULT_PRESS_TIMING */
  timing?: PressTiming;
  /** where the synthetic clock starts, and never falls behind; default Date.now */
  now?: () => number;
}

export interface SimPressOptions {
  /** hold for longMs + 100 ms */
  long?: boolean;
  /** two 80 ms presses 150 ms apart */
  double?: boolean;
}

/** Emits 'press' (ButtonPress) synchronously from press(). */
export class SimButtons extends EventEmitter implements ButtonSource {
  readonly #timing: PressTiming;
  readonly #now: () => number;
  readonly #classifiers = new Map<ButtonName, PressClassifier>();
  #clock: number;
  #running = false;

  constructor(options: SimButtonsOptions = {}) {
    super();
    this.#timing = options.timing ?? DEFAULT_PRESS_TIMING;
    this.#now = options.now ?? Date.now;
    this.#clock = this.#now();
  }

  async start(): Promise<void> {
    this.#running = true;
  }

  async stop(): Promise<void> {
    this.#running = false;
  }

  /** Presses a button now; returns (and emits) what the classifier made of it. Nothing while stopped. */
  press(button: ButtonName, options: SimPressOptions = {}): ButtonPress[] {
    if (!this.#running) return [];
    let classifier = this.#classifiers.get(button);
    if (!classifier) {
      classifier = new PressClassifier(button, this.#timing);
      this.#classifiers.set(button, classifier);
    }
    // Never earlier than the last synthetic press ended, never behind the real clock.
    const t0 = Math.max(this.#clock, this.#now());
    const { longMs, doubleMs, debounceMs } = this.#timing;
    const edges: [boolean, number][] = options.long
      ? [
          [true, t0],
          [false, t0 + longMs + 100],
        ]
      : options.double
        ? [
            [true, t0],
            [false, t0 + debounceMs + 80],
            [true, t0 + debounceMs + 80 + Math.min(150, doubleMs)],
            [false, t0 + 2 * (debounceMs + 80) + Math.min(150, doubleMs)],
          ]
        : [
            [true, t0],
            [false, t0 + debounceMs + 80],
          ];
    const out: ButtonPress[] = [];
    for (const [pressed, at] of edges) out.push(...classifier.edge(pressed, at));
    // Let the double-press window pass so a short press is decided now.
    const end = edges.at(-1)![1] + doubleMs + 1;
    out.push(...classifier.tick(end));
    this.#clock = end + 1;
    for (const press of out) this.emit('press', press);
    return out;
  }
}

export class SimIndicators implements Indicators {
  readonly #patterns = new Map<IndicatorName, IndicatorPattern>();
  /** every set() in order, for tests that check a sequence (vibrate, then LED) */
  readonly history: { name: IndicatorName; pattern: IndicatorPattern }[] = [];
  #closed = false;

  set(name: IndicatorName, pattern: IndicatorPattern): void {
    if (this.#closed) return;
    this.#patterns.set(name, pattern);
    this.history.push({ name, pattern });
  }

  state(name: IndicatorName): IndicatorPattern {
    return this.#patterns.get(name) ?? 'off';
  }

  async close(): Promise<void> {
    for (const name of this.#patterns.keys()) this.#patterns.set(name, 'off');
    this.#closed = true;
  }
}
