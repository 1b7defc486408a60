import test from 'ava';
import fc from 'fast-check';
import type { ButtonName, PressKind } from '../../hardware/buttons.ts';
import {
  INITIAL_STATE,
  transition,
  type Effect,
  type Input,
  type Mode,
  type RecorderState,
  type StorageLevel,
} from '../../device/state-machine.ts';

let counter = 0;
const ctx = () => ({ now: 1_700_000_000_000, newEventId: () => `E${++counter}` });
const press = (button: ButtonName, kind: PressKind): Input => ({
  type: 'press',
  press: { button, kind, at: 0 },
});
const run = (inputs: Input[], from: RecorderState = INITIAL_STATE) => {
  let state = from;
  const effects: Effect[] = [];
  for (const input of inputs) {
    const t = transition(state, input, ctx());
    state = t.state;
    effects.push(...t.effects);
  }
  return { state, effects };
};
const ofType = <T extends Effect['type']>(effects: Effect[], type: T) =>
  effects.filter((e): e is Extract<Effect, { type: T }> => e.type === type);

const buttons: ButtonName[] = ['record', 'mark', 'photo', 'audio'];
const kinds: PressKind[] = ['short', 'long', 'double'];
const allInputs: Input[] = [
  ...buttons.flatMap((b) => kinds.map((k) => press(b, k))),
  { type: 'postrecord-elapsed' },
  { type: 'max-length-reached' },
  { type: 'storage', level: 'ok', reason: null },
  { type: 'storage', level: 'warn', reason: 'below reserve' },
  { type: 'storage', level: 'refuse', reason: 'below minimum' },
  { type: 'fault', reason: 'pipeline failed' },
  { type: 'recovered' },
  { type: 'dock' },
  { type: 'undock' },
];

/** One representative state per (mode, storage, docked). */
function states(): RecorderState[] {
  const out: RecorderState[] = [];
  const event = { id: 'E0', startedAt: 0, audioOnly: false, continues: null };
  for (const mode of ['standby', 'recording', 'stopping', 'fault'] as Mode[]) {
    for (const storage of ['ok', 'warn', 'refuse'] as StorageLevel[]) {
      for (const docked of [false, true]) {
        out.push({
          ...INITIAL_STATE,
          mode,
          storage,
          docked,
          storageReason: storage === 'ok' ? null : storage,
          event: mode === 'recording' || mode === 'stopping' ? event : null,
          fault: mode === 'fault' ? 'x' : null,
        });
      }
    }
  }
  return out;
}

test('exhaustive: every state × every input keeps the invariants', (t) => {
  let checked = 0;
  for (const state of states()) {
    for (const input of allInputs) {
      const { state: next, effects } = transition(state, input, ctx());
      const label = `${state.mode}/${state.storage}/${state.docked} + ${JSON.stringify(input)}`;
      // An event exists exactly while recording or stopping.
      t.is(next.event !== null, next.mode === 'recording' || next.mode === 'stopping', label);
      // Every mode change is journaled once, with from and to.
      const changes = ofType(effects, 'journal').filter((e) => e.kind === 'state');
      if (next.mode !== state.mode)
        t.deepEqual(
          changes.map((c) => [c.body.from, c.body.to]),
          [[state.mode, next.mode]],
          label,
        );
      else t.is(changes.length, 0, label);
      // Every press is journaled first.
      if (input.type === 'press') t.like(effects[0], { type: 'journal', kind: 'button' }, label);
      // A bump never stops a recording: only long or double presses of record/audio do.
      if (state.mode === 'recording' && next.mode === 'stopping') {
        t.true(
          input.type === 'press' &&
            input.press.kind !== 'short' &&
            ['record', 'audio'].includes(input.press.button),
          label,
        );
      }
      // Recording starts only with storage above the minimum, and always with an announcement (R4).
      const starts = ofType(effects, 'start-event').filter((s) => s.prerecord);
      if (starts.length) {
        t.not(state.storage, 'refuse', label);
        t.is(ofType(effects, 'announce').length, 1, label);
      }
      checked++;
    }
  }
  t.is(checked, 24 * allInputs.length);
});

test('a short press starts recording with pre-record, announcement and red LED', (t) => {
  const { state, effects } = run([press('record', 'short')]);
  t.is(state.mode, 'recording');
  t.false(state.event!.audioOnly);
  t.like(ofType(effects, 'start-event')[0], { prerecord: true });
  t.is(ofType(effects, 'announce').length, 1);
  t.like(
    ofType(effects, 'indicator').find((e) => e.name === 'led-video'),
    { pattern: 'on' },
  );
});

test('short presses while recording never stop it; long or double do, then post-record ends the event', (t) => {
  const recording = run([press('record', 'short'), press('record', 'short'), press('record', 'short')]);
  t.is(recording.state.mode, 'recording');
  for (const kind of ['long', 'double'] as const) {
    const stopping = run([press('record', kind)], recording.state);
    t.is(stopping.state.mode, 'stopping');
    t.like(ofType(stopping.effects, 'stop-event')[0], { postrecord: true });
    t.true(ofType(stopping.effects, 'timer').some((e) => e.name === 'postrecord' && e.action === 'start'));
    const done = run([{ type: 'postrecord-elapsed' }], stopping.state);
    t.is(done.state.mode, 'standby');
    t.is(ofType(done.effects, 'end-event')[0]!.event.id, recording.state.event!.id);
  }
});

test('a short press during post-record resumes the same event', (t) => {
  const { state, effects } = run([
    press('record', 'short'),
    press('record', 'long'),
    press('record', 'short'),
  ]);
  t.is(state.mode, 'recording');
  t.is(ofType(effects, 'start-event').length, 1);
  t.true(ofType(effects, 'timer').some((e) => e.name === 'postrecord' && e.action === 'cancel'));
});

test('marks are numbered within an event and refused outside one', (t) => {
  const { effects } = run([
    press('mark', 'short'),
    press('record', 'short'),
    press('mark', 'short'),
    press('mark', 'short'),
  ]);
  t.deepEqual(
    ofType(effects, 'mark').map((m) => m.index),
    [1, 2],
  );
  t.like(
    ofType(effects, 'indicator').find((e) => e.name === 'vibration'),
    { pattern: { pulseMs: 150, times: 3 } },
  );
});

test('storage below the minimum refuses a start and says why', (t) => {
  const { state, effects } = run([
    { type: 'storage', level: 'refuse', reason: 'free 100 MB < minimum 512 MB' },
    press('record', 'short'),
  ]);
  t.is(state.mode, 'standby');
  const refused = ofType(effects, 'journal').find((e) => e.kind === 'record-refused');
  t.deepEqual(refused?.body, { reason: 'free 100 MB < minimum 512 MB' });
  t.is(ofType(effects, 'start-event').length, 0);
});

test('storage running out during a recording does not stop it', (t) => {
  const { state } = run([press('record', 'short'), { type: 'storage', level: 'refuse', reason: 'low' }]);
  t.is(state.mode, 'recording');
});

test('maximum length rolls over to a new event that continues the old one without pre-record', (t) => {
  const { state, effects } = run([press('audio', 'short'), { type: 'max-length-reached' }]);
  t.is(state.mode, 'recording');
  const starts = ofType(effects, 'start-event');
  t.is(starts.length, 2);
  t.is(starts[1]!.event.continues, starts[0]!.event.id);
  t.false(starts[1]!.prerecord);
  t.true(starts[1]!.event.audioOnly);
  t.is(ofType(effects, 'end-event')[0]!.event.id, starts[0]!.event.id);
});

test('property: any sequence of inputs keeps events, timers and journal consistent', (t) => {
  const inputArb = fc.constantFrom(...allInputs);
  fc.assert(
    fc.property(fc.array(inputArb, { maxLength: 60 }), (inputs) => {
      let state = INITIAL_STATE;
      const open = new Set<string>();
      for (const input of inputs) {
        const result = transition(state, input, ctx());
        for (const e of result.effects) {
          if (e.type === 'start-event') {
            if (open.size !== 0) return false; // one event at a time
            open.add(e.event.id);
          }
          if (e.type === 'end-event' && !open.delete(e.event.id)) return false; // end only what was started
        }
        state = result.state;
        if ((state.event !== null) !== (open.size === 1)) return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
