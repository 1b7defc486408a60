import test from 'ava';
import fc from 'fast-check';
import { assignSegment, pruneRing, type EventWindow, type SpanSegment } from '../../device/segment-router.ts';

const seg = (startS: number, endS: number): SpanSegment => ({
  path: `s${startS}`,
  startMs: startS * 1000,
  endMs: endS * 1000,
});
const event = (pressS: number, prerecordS: number, endS: number | null, id = 'E'): EventWindow => ({
  id,
  pressedAt: pressS * 1000,
  prerecordMs: prerecordS * 1000,
  endedAt: endS === null ? null : endS * 1000,
});

test('segments before the pre-record window stay buffer; those inside become prerecord; the press segment is recording', (t) => {
  const e = [event(100, 30, null)];
  t.is(assignSegment(seg(60, 70), e), null);
  t.deepEqual(assignSegment(seg(65, 75), e), { event: 'E', reason: 'prerecord' });
  t.deepEqual(assignSegment(seg(90, 100), e), { event: 'E', reason: 'prerecord' });
  t.deepEqual(assignSegment(seg(95, 105), e), { event: 'E', reason: 'recording' });
  t.deepEqual(assignSegment(seg(1000, 1010), e), { event: 'E', reason: 'recording' });
});

test('the segment straddling the end of post-record is part of the event; the next one is not', (t) => {
  const e = [event(100, 30, 200)];
  t.deepEqual(assignSegment(seg(195, 205), e), { event: 'E', reason: 'recording' });
  t.is(assignSegment(seg(205, 215), e), null);
});

test('at a rollover the straddling segment goes to the earlier event only', (t) => {
  const e = [event(100, 30, 200, 'A'), event(200, 0, null, 'B')];
  t.deepEqual(assignSegment(seg(195, 205), e), { event: 'A', reason: 'recording' });
  t.deepEqual(assignSegment(seg(205, 215), e), { event: 'B', reason: 'recording' });
});

test('property: with contiguous segments, pre-record coverage is at least the configured seconds', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }), // segment seconds
      fc.integer({ min: 0, max: 60 }), // pre-record seconds
      fc.integer({ min: 200, max: 400 }), // press time, seconds
      (segS, preS, pressS) => {
        const segments: SpanSegment[] = [];
        for (let s = 0; s < 500; s += segS) segments.push(seg(s, s + segS));
        // At the press, the ring holds the closed segments pruning left; the open one closes later.
        const press = pressS * 1000;
        const closed = segments.filter((s) => s.endMs <= press);
        const open = segments.filter((s) => s.startMs < press && s.endMs > press);
        const [kept] = pruneRing(closed, press, preS * 1000);
        const e = [event(pressS, preS, null)];
        const covered = [...kept, ...open].filter((s) => assignSegment(s, e) !== null);
        const earliest = Math.min(...covered.map((s) => s.startMs), pressS * 1000);
        return pressS * 1000 - earliest >= preS * 1000;
      },
    ),
  );
  t.pass();
});

test('pruning drops only what ended before the pre-record horizon', (t) => {
  const [keep, drop] = pruneRing([seg(0, 10), seg(10, 20), seg(20, 30)], 45_000, 30_000);
  t.deepEqual(
    drop.map((s) => s.path),
    ['s0'],
  );
  t.deepEqual(
    keep.map((s) => s.path),
    ['s10', 's20'],
  );
});
