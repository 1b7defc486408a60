/**
 * Updates the watermark once a second, on the second boundary, so the burned-in time changes when
 * the wall clock's second does (issue 3 §3: updated every second).
 */
import { watermarkText, type WatermarkContext } from './watermark.ts';

export interface WatermarkTickerOptions {
  /** the overlay to update, e.g. (text) => supervisor.setOverlay(text) */
  setText: (text: string) => void;
  /** default DEFAULT_WATERMARK_TEMPLATE (the profile's watermark.template) */
  template: string;
  /** everything but `now`, read fresh at every tick (officer, fix and clock trust change) */
  context: () => Omit<WatermarkContext, 'now'>;
  /** wall clock, epoch ms; default Date.now */
  now?: () => number;
}

export class WatermarkTicker {
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly options: WatermarkTickerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Sets the text now and then at every following second. */
  start(): void {
    if (this.timer) return;
    this.tick();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The text for this instant (also what the last tick set). */
  text(): string {
    return watermarkText(this.options.template, { ...this.options.context(), now: this.now() });
  }

  private tick(): void {
    this.options.setText(this.text());
    // +5 ms so the timer lands just after the boundary, never just before it.
    const delay = 1000 - (this.now() % 1000) + 5;
    this.timer = setTimeout(() => this.tick(), delay);
    this.timer.unref();
  }
}
