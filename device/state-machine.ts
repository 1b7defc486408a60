/**
 * The recorder's state machine: one place, pure, no I/O, no timers. Inputs go in, the next state
 * and a list of effects come out; the device runner performs the effects (journal, indicators,
 * capture) and feeds timer expiries back in as inputs.
 *
 *   standby ──record/audio short──▶ recording ──record long|double──▶ stopping ──post-record done──▶ standby
 *      ▲                               ▲   │                             │
 *      │                               │   └─max length─▶ (new event)    │ record short: resume
 *      └──────── recovered ◀── fault ◀─┴─────────────────────────────────┘
 *
 * R2 / HN 8, 16, 20: one short press starts (with pre-record), stopping needs a deliberate long or
 * double press so a bump never stops a recording. R4 / SX 17: an announcement when recording
 * starts. R18: every transition and every press is journaled.
 */
import type { ButtonPress } from '../hardware/buttons.ts';
import type { IndicatorName, IndicatorPattern } from '../hardware/indicators.ts';

export type Mode = 'standby' | 'recording' | 'stopping' | 'fault';
export type StorageLevel = 'ok' | 'warn' | 'refuse';

export interface EventInfo {
  id: string;
  /** wall-clock ms of the press that started it */
  startedAt: number;
  audioOnly: boolean;
  /** the event this one continues after a rollover at maximum length */
  continues: string | null;
}

export interface RecorderState {
  mode: Mode;
  event: EventInfo | null;
  storage: StorageLevel;
  storageReason: string | null;
  fault: string | null;
  docked: boolean;
  marks: number;
}

export const INITIAL_STATE: RecorderState = {
  mode: 'standby',
  event: null,
  storage: 'ok',
  storageReason: null,
  fault: null,
  docked: false,
  marks: 0,
};

export type Input =
  | { type: 'press'; press: ButtonPress }
  | { type: 'postrecord-elapsed' }
  | { type: 'max-length-reached' }
  | { type: 'storage'; level: StorageLevel; reason: string | null }
  | { type: 'fault'; reason: string }
  | { type: 'recovered' }
  | { type: 'dock' }
  | { type: 'undock' };

export type Effect =
  | { type: 'journal'; kind: string; body: Record<string, string | number | boolean | null> }
  | { type: 'indicator'; name: IndicatorName; pattern: IndicatorPattern }
  | { type: 'announce' }
  | { type: 'start-event'; event: EventInfo; prerecord: boolean }
  | { type: 'stop-event'; event: EventInfo; postrecord: boolean }
  | { type: 'end-event'; event: EventInfo }
  | { type: 'mark'; event: EventInfo; index: number }
  | { type: 'photo'; event: EventInfo | null }
  | { type: 'timer'; name: 'postrecord' | 'max-length' | 'reminder'; action: 'start' | 'cancel' };

export interface Transition {
  state: RecorderState;
  effects: Effect[];
}

export interface MachineContext {
  /** wall-clock ms now */
  now: number;
  /** a fresh event id (the runner makes it from the device number and time) */
  newEventId: () => string;
}

const FEEDBACK_REFUSED: IndicatorPattern = { pulseMs: 150, times: 3 };
const FEEDBACK_OK: IndicatorPattern = { pulseMs: 300, times: 1 };

export function transition(state: RecorderState, input: Input, ctx: MachineContext): Transition {
  const effects: Effect[] = [];
  let next: RecorderState = state;
  const moveTo = (mode: Mode, cause: string, patch: Partial<RecorderState> = {}) => {
    effects.push({ type: 'journal', kind: 'state', body: { from: next.mode, to: mode, cause } });
    next = { ...next, ...patch, mode };
    effects.push(...modeIndicators(next));
  };
  const startEvent = (audioOnly: boolean, cause: string) => {
    if (state.storage === 'refuse') {
      effects.push(
        {
          type: 'journal',
          kind: 'record-refused',
          body: { reason: state.storageReason ?? 'storage below the minimum' },
        },
        { type: 'indicator', name: 'vibration', pattern: FEEDBACK_REFUSED },
        { type: 'indicator', name: 'led-status', pattern: 'blink-fast' },
      );
      return;
    }
    const event: EventInfo = { id: ctx.newEventId(), startedAt: ctx.now, audioOnly, continues: null };
    moveTo('recording', cause, { event, marks: 0 });
    effects.push(
      { type: 'start-event', event, prerecord: true },
      { type: 'announce' },
      { type: 'indicator', name: 'vibration', pattern: FEEDBACK_OK },
      { type: 'timer', name: 'max-length', action: 'start' },
      { type: 'timer', name: 'reminder', action: 'start' },
    );
  };

  switch (input.type) {
    case 'press': {
      const { button, kind } = input.press;
      effects.push({ type: 'journal', kind: 'button', body: { button, press: kind, mode: state.mode } });
      if (state.mode === 'fault') {
        if (button === 'photo' || button === 'mark' || button === 'record' || button === 'audio') {
          effects.push({ type: 'indicator', name: 'vibration', pattern: FEEDBACK_REFUSED });
        }
        break;
      }
      if (button === 'record' || button === 'audio') {
        const audioOnly = button === 'audio';
        if (state.mode === 'standby' && kind === 'short') startEvent(audioOnly, `${button} short press`);
        else if (state.mode === 'recording' && (kind === 'long' || kind === 'double') && state.event) {
          moveTo('stopping', `${button} ${kind} press`);
          effects.push(
            { type: 'stop-event', event: state.event, postrecord: true },
            { type: 'timer', name: 'postrecord', action: 'start' },
            { type: 'timer', name: 'reminder', action: 'cancel' },
            { type: 'indicator', name: 'vibration', pattern: { pulseMs: 600, times: 1 } },
          );
        } else if (state.mode === 'stopping' && kind === 'short' && state.event) {
          // The officer changed their mind during post-record: the same event goes on.
          moveTo('recording', `${button} short press during post-record`);
          effects.push(
            { type: 'timer', name: 'postrecord', action: 'cancel' },
            { type: 'timer', name: 'reminder', action: 'start' },
            { type: 'indicator', name: 'vibration', pattern: FEEDBACK_OK },
          );
        }
        // A short press while recording does nothing: a bump never stops a recording.
      } else if (button === 'mark') {
        if ((state.mode === 'recording' || state.mode === 'stopping') && state.event) {
          const index = state.marks + 1;
          next = { ...next, marks: index };
          effects.push(
            { type: 'mark', event: state.event, index },
            { type: 'indicator', name: 'vibration', pattern: FEEDBACK_OK },
          );
        } else {
          effects.push({ type: 'indicator', name: 'vibration', pattern: FEEDBACK_REFUSED });
        }
      } else if (button === 'photo') {
        effects.push(
          { type: 'photo', event: state.event },
          { type: 'indicator', name: 'vibration', pattern: FEEDBACK_OK },
        );
      }
      break;
    }
    case 'postrecord-elapsed':
      if (state.mode === 'stopping' && state.event) {
        moveTo('standby', 'post-record elapsed', { event: null });
        effects.push(
          { type: 'end-event', event: state.event },
          { type: 'timer', name: 'max-length', action: 'cancel' },
        );
      }
      break;
    case 'max-length-reached':
      if ((state.mode === 'recording' || state.mode === 'stopping') && state.event) {
        // Roll over without a gap: the next event continues this one and needs no pre-record.
        const event: EventInfo = {
          id: ctx.newEventId(),
          startedAt: ctx.now,
          audioOnly: state.event.audioOnly,
          continues: state.event.id,
        };
        effects.push(
          { type: 'journal', kind: 'rollover', body: { from: state.event.id, to: event.id } },
          { type: 'end-event', event: state.event },
          { type: 'start-event', event, prerecord: false },
          { type: 'timer', name: 'max-length', action: 'start' },
        );
        next = { ...next, event, marks: 0 };
      }
      break;
    case 'storage':
      if (input.level !== state.storage || input.reason !== state.storageReason) {
        effects.push({
          type: 'journal',
          kind: 'storage',
          body: { level: input.level, reason: input.reason },
        });
        next = { ...next, storage: input.level, storageReason: input.reason };
        effects.push(...modeIndicators(next));
      }
      break;
    case 'fault':
      if (state.mode !== 'fault') {
        if (state.event) effects.push({ type: 'end-event', event: state.event });
        moveTo('fault', input.reason, { fault: input.reason, event: null });
        effects.push(
          { type: 'timer', name: 'postrecord', action: 'cancel' },
          { type: 'timer', name: 'max-length', action: 'cancel' },
          { type: 'timer', name: 'reminder', action: 'cancel' },
          { type: 'indicator', name: 'vibration', pattern: FEEDBACK_REFUSED },
        );
      }
      break;
    case 'recovered':
      if (state.mode === 'fault') moveTo('standby', 'recovered', { fault: null });
      break;
    case 'dock':
    case 'undock': {
      const docked = input.type === 'dock';
      if (docked !== state.docked) {
        effects.push({ type: 'journal', kind: input.type, body: { mode: state.mode } });
        next = { ...next, docked };
        effects.push(...modeIndicators(next));
      }
      break;
    }
  }
  return { state: next, effects };
}

/** GA/T 947 colours: power green, audio-only yellow, video red. */
function modeIndicators(state: RecorderState): Effect[] {
  const recording = state.mode === 'recording' || state.mode === 'stopping';
  const audioOnly = state.event?.audioOnly ?? false;
  return [
    { type: 'indicator', name: 'led-power', pattern: state.docked ? 'blink-slow' : 'on' },
    {
      type: 'indicator',
      name: 'led-video',
      pattern: recording && !audioOnly ? (state.mode === 'stopping' ? 'blink-fast' : 'on') : 'off',
    },
    {
      type: 'indicator',
      name: 'led-audio',
      pattern: recording && audioOnly ? (state.mode === 'stopping' ? 'blink-fast' : 'on') : 'off',
    },
    {
      type: 'indicator',
      name: 'led-status',
      pattern:
        state.mode === 'fault' || state.storage === 'refuse'
          ? 'blink-fast'
          : state.storage === 'warn'
            ? 'blink-slow'
            : 'off',
    },
  ];
}
