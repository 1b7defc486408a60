/**
 * Buttons as the device's state machine sees them: already debounced and classified presses.
 * GPIO drivers (onoff, libgpiod, simulated) feed edges into the press classifier, which emits these.
 */
import type { EventEmitter } from 'node:events';

export type ButtonName = 'record' | 'mark' | 'photo' | 'audio';
export type PressKind = 'short' | 'long' | 'double';

export interface ButtonPress {
  button: ButtonName;
  kind: PressKind;
  /** when the press began (ms since epoch, system clock) */
  at: number;
}

export interface ButtonSource extends EventEmitter {
  // event 'press' (ButtonPress)
  start(): Promise<void>;
  stop(): Promise<void>;
}
