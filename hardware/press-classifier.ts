/**
 * Turns the edges of one button into presses (pure, no timers: the caller feeds edges and asks
 * for the next deadline). R2 / HN 16: a bump must never stop a recording, so stopping takes a long
 * or a double press, and contact bounce must never look like a double press.
 *
 * - debounce: a change of level within `debounceMs` of the last accepted change is bounce; if the
 *   line still differs when that window ends, the change is accepted then.
 * - long: held for at least `longMs`; reported when the hold reaches `longMs` (the officer feels
 *   the vibration without letting go), `at` = when the press began.
 * - double: a second press that begins within `doubleMs` of the first one's release; `at` = when
 *   the first began. A lone short press is reported once `doubleMs` has passed without a second.
 */
import type { ButtonName, ButtonPress } from './buttons.ts';

export interface PressTiming {
  /** default 30 ms (profile hardware.press.debounceMs) */
  debounceMs: number;
  /** default 1500 ms */
  longMs: number;
  /** default 400 ms */
  doubleMs: number;
}

export const DEFAULT_PRESS_TIMING: PressTiming = { debounceMs: 30, longMs: 1500, doubleMs: 400 };

export class PressClassifier {
  readonly #button: ButtonName;
  readonly #timing: PressTiming;
  /** debounced level */
  #pressed = false;
  /** last level the line reported */
  #raw = false;
  #lastChange = -Infinity;
  #pressStart = 0;
  #longFired = false;
  /** a short press waiting to see whether a second one follows */
  #pending: { pressAt: number; releaseAt: number } | null = null;
  /** the current press began inside the double-press window of #pending */
  #second = false;

  constructor(button: ButtonName, timing: PressTiming = DEFAULT_PRESS_TIMING) {
    this.#button = button;
    this.#timing = timing;
  }

  /** The line changed: `pressed` is the logical level (active-low already applied), `at` in ms. */
  edge(pressed: boolean, at: number): ButtonPress[] {
    const out = this.tick(at);
    this.#raw = pressed;
    if (pressed === this.#pressed) return out;
    if (at - this.#lastChange < this.#timing.debounceMs) return out;
    this.#accept(pressed, at, out);
    return out;
  }

  /** Time has reached `now`: reports what became certain by then. */
  tick(now: number): ButtonPress[] {
    const out: ButtonPress[] = [];
    for (;;) {
      const next = this.#nextEvent();
      if (!next || next.at > now) return out;
      next.run(out);
    }
  }

  /** When `tick` should be called next, or null when nothing is pending. */
  nextDeadline(): number | null {
    return this.#nextEvent()?.at ?? null;
  }

  #nextEvent(): { at: number; run: (out: ButtonPress[]) => void } | null {
    const { debounceMs, longMs, doubleMs } = this.#timing;
    const candidates: { at: number; run: (out: ButtonPress[]) => void }[] = [];
    if (this.#raw !== this.#pressed) {
      const at = this.#lastChange + debounceMs;
      candidates.push({ at, run: (out) => this.#accept(this.#raw, at, out) });
    }
    if (this.#pressed && !this.#longFired) {
      candidates.push({ at: this.#pressStart + longMs, run: (out) => this.#fireLong(out) });
    }
    if (this.#pending && !this.#pressed && !this.#second) {
      const pending = this.#pending;
      candidates.push({
        // "within doubleMs" is inclusive: the window is over one ms later.
        at: pending.releaseAt + doubleMs + 1,
        run: (out) => {
          this.#pending = null;
          out.push(this.#press('short', pending.pressAt));
        },
      });
    }
    if (candidates.length === 0) return null;
    return candidates.reduce((a, b) => (b.at < a.at ? b : a));
  }

  #accept(pressed: boolean, at: number, out: ButtonPress[]): void {
    this.#pressed = pressed;
    this.#lastChange = at;
    if (pressed) {
      this.#pressStart = at;
      this.#longFired = false;
      this.#second = this.#pending !== null && at - this.#pending.releaseAt <= this.#timing.doubleMs;
      return;
    }
    if (this.#longFired) return;
    if (at - this.#pressStart >= this.#timing.longMs) {
      this.#fireLong(out);
      return;
    }
    if (this.#second && this.#pending) {
      out.push(this.#press('double', this.#pending.pressAt));
      this.#pending = null;
      this.#second = false;
      return;
    }
    this.#pending = { pressAt: this.#pressStart, releaseAt: at };
  }

  #fireLong(out: ButtonPress[]): void {
    this.#longFired = true;
    if (this.#second && this.#pending) {
      // short, then a long press inside the window: two separate presses.
      out.push(this.#press('short', this.#pending.pressAt));
    }
    this.#pending = null;
    this.#second = false;
    out.push(this.#press('long', this.#pressStart));
  }

  #press(kind: ButtonPress['kind'], at: number): ButtonPress {
    return { button: this.#button, kind, at };
  }
}
