// The press classifier with synthetic times: every case of R2's "a bump never stops a recording".
import test from 'ava';
import fc from 'fast-check';
import type { ButtonPress } from '../../hardware/buttons.ts';
import { PressClassifier, type PressTiming } from '../../hardware/press-classifier.ts';

const timing: PressTiming = { debounceMs: 30, longMs: 1500, doubleMs: 400 };

/** Feeds [pressed, at] edges, then lets time run to `until`. */
function classify(edges: [boolean, number][], until = 100_000, t: PressTiming = timing): ButtonPress[] {
  const c = new PressClassifier('record', t);
  const out: ButtonPress[] = [];
  for (const [pressed, at] of edges) out.push(...c.edge(pressed, at));
  out.push(...c.tick(until));
  return out;
}

const kinds = (presses: ButtonPress[]) => presses.map((p) => `${p.kind}@${p.at}`);

test('a short press is reported once the double-press window has passed', (t) => {
  const c = new PressClassifier('record', timing);
  t.deepEqual(c.edge(true, 1000), []);
  t.deepEqual(c.edge(false, 1100), []);
  t.is(c.nextDeadline(), 1501);
  t.deepEqual(c.tick(1500), []);
  t.deepEqual(c.tick(1501), [{ button: 'record', kind: 'short', at: 1000 }]);
  t.is(c.nextDeadline(), null);
});

test('a long press is reported when the hold reaches longMs, not at release', (t) => {
  const c = new PressClassifier('record', timing);
  c.edge(true, 0);
  t.is(c.nextDeadline(), 1500);
  t.deepEqual(c.tick(1499), []);
  t.deepEqual(kinds(c.tick(1500)), ['long@0']);
  t.deepEqual(c.edge(false, 4000), []);
  t.deepEqual(c.tick(10_000), []);
});

test('exactly longMs is long; one ms less is short', (t) => {
  t.deepEqual(
    kinds(
      classify([
        [true, 0],
        [false, 1500],
      ]),
    ),
    ['long@0'],
  );
  t.deepEqual(
    kinds(
      classify([
        [true, 0],
        [false, 1499],
      ]),
    ),
    ['short@0'],
  );
});

test('a release reported late (no tick in between) still gives a long press', (t) => {
  const c = new PressClassifier('record', timing);
  c.edge(true, 0);
  t.deepEqual(kinds(c.edge(false, 2000)), ['long@0']);
});

test('a double press: second press begins within doubleMs of the first release', (t) => {
  t.deepEqual(
    kinds(
      classify([
        [true, 0],
        [false, 100],
        [true, 500],
        [false, 600],
      ]),
    ),
    ['double@0'],
  );
  // at exactly doubleMs after the release it still counts
  t.deepEqual(
    kinds(
      classify([
        [true, 0],
        [false, 100],
        [true, 500],
        [false, 550],
      ]),
    ),
    ['double@0'],
  );
  // one ms later it is two short presses
  t.deepEqual(
    kinds(
      classify([
        [true, 0],
        [false, 100],
        [true, 501],
        [false, 600],
      ]),
    ),
    ['short@0', 'short@501'],
  );
});

test('the double press is reported at the second release, without waiting', (t) => {
  const c = new PressClassifier('record', timing);
  c.edge(true, 0);
  c.edge(false, 100);
  c.edge(true, 300);
  t.deepEqual(kinds(c.edge(false, 400)), ['double@0']);
  t.is(c.nextDeadline(), null);
});

test('short then long inside the window: a short press and a long press', (t) => {
  t.deepEqual(
    kinds(
      classify([
        [true, 0],
        [false, 100],
        [true, 300],
      ]),
    ),
    ['short@0', 'long@300'],
  );
});

test('three quick presses: a double, then a short', (t) => {
  t.deepEqual(
    kinds(
      classify([
        [true, 0],
        [false, 100],
        [true, 200],
        [false, 300],
        [true, 400],
        [false, 500],
      ]),
    ),
    ['double@0', 'short@400'],
  );
});

test('contact bounce on press and release is one short press, never a double', (t) => {
  const bouncy: [boolean, number][] = [
    [true, 0],
    [false, 3],
    [true, 6],
    [false, 9],
    [true, 12],
    [false, 200],
    [true, 205],
    [false, 210],
  ];
  t.deepEqual(kinds(classify(bouncy)), ['short@0']);
});

test('a release lost in the bounce window is accepted when the window ends', (t) => {
  // press at 0, release at 10 (inside the 30 ms window): the line stays released, so at 30 the
  // release is accepted; far too short to be anything but a short press.
  const c = new PressClassifier('record', timing);
  c.edge(true, 0);
  c.edge(false, 10);
  t.is(c.nextDeadline(), 30);
  t.deepEqual(kinds(c.tick(5000)), ['short@0']);
});

test('a glitch shorter than the debounce after a release does not start a press', (t) => {
  // release accepted at 100; a 5 ms spike at 110 ends before the window: nothing.
  t.deepEqual(
    kinds(
      classify([
        [true, 0],
        [false, 100],
        [true, 110],
        [false, 115],
      ]),
    ),
    ['short@0'],
  );
});

test('repeated edges of the same level are ignored', (t) => {
  t.deepEqual(
    kinds(
      classify([
        [true, 0],
        [true, 50],
        [false, 100],
        [false, 150],
      ]),
    ),
    ['short@0'],
  );
});

test('with debounce 0 every edge counts', (t) => {
  const t0: PressTiming = { debounceMs: 0, longMs: 1500, doubleMs: 400 };
  t.deepEqual(
    kinds(
      classify(
        [
          [true, 0],
          [false, 1],
          [true, 2],
          [false, 3],
        ],
        10_000,
        t0,
      ),
    ),
    ['double@0'],
  );
});

test('property: presses come out in time order, and every debounced press is reported exactly once', (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 2500 }), { maxLength: 40 }), (gaps) => {
      let at = 0;
      const edges: [boolean, number][] = gaps.map((g, i) => [i % 2 === 0, (at += g)]);
      const presses = classify(edges, at + 10_000);
      const ats = presses.map((p) => p.at);
      const sorted = [...ats].sort((a, b) => a - b);
      if (JSON.stringify(ats) !== JSON.stringify(sorted)) return false;
      // Every debounced press ends up in exactly one reported press (a double holds two).
      const accepted = countAcceptedPresses(edges);
      const reported = presses.reduce((n, p) => n + (p.kind === 'double' ? 2 : 1), 0);
      return reported === accepted;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

/** Reference count of presses after debounce, computed independently of the classifier. */
function countAcceptedPresses(edges: [boolean, number][]): number {
  let pressed = false;
  let last = -Infinity;
  let raw = false;
  let count = 0;
  const settle = (now: number) => {
    if (raw !== pressed && now >= last + timing.debounceMs) {
      last = last + timing.debounceMs;
      pressed = raw;
      if (pressed) count++;
    }
  };
  for (const [p, at] of edges) {
    settle(at);
    raw = p;
    if (p === pressed || at - last < timing.debounceMs) continue;
    pressed = p;
    last = at;
    if (p) count++;
  }
  settle(Infinity);
  return count;
}
