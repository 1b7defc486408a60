/**
 * Decides what each closed spool segment is: evidence of an event (pre-record, recording, or the
 * post-record tail) or pre-record buffer that is not evidence yet. Pure: it only looks at the
 * segments' wall-clock spans and the events' windows.
 *
 * R2 / HN 8: pre-record means the last N seconds before the press are part of the event. The
 * capture writes short segments continuously; while in standby the device keeps a ring of them and
 * drops those too old to fall inside any pre-record window. A segment is evidence of an event when
 * its span overlaps the event's window [press − pre-record, end]; the end is open while recording.
 */

export interface SpanSegment {
  path: string;
  /** wall-clock ms of the first and last frame */
  startMs: number;
  endMs: number;
}

export interface EventWindow {
  id: string;
  /** wall-clock ms of the press */
  pressedAt: number;
  /** pre-record ms included before the press (0 after a rollover) */
  prerecordMs: number;
  /** wall-clock ms when post-record ended; null while the event is open */
  endedAt: number | null;
}

export type SegmentReason = 'prerecord' | 'recording';

export interface Assignment {
  event: string;
  reason: SegmentReason;
}

/** The event a closed segment belongs to, or null when it is only pre-record buffer. */
export function assignSegment(segment: SpanSegment, events: readonly EventWindow[]): Assignment | null {
  for (const event of events) {
    const from = event.pressedAt - event.prerecordMs;
    const to = event.endedAt ?? Number.POSITIVE_INFINITY;
    if (segment.endMs > from && segment.startMs < to) {
      return { event: event.id, reason: segment.endMs <= event.pressedAt ? 'prerecord' : 'recording' };
    }
  }
  return null;
}

/**
 * Buffered standby segments that can no longer fall into a future pre-record window: everything
 * that ended before `now − prerecordMs`. Returns [keep, drop].
 */
export function pruneRing<T extends SpanSegment>(
  ring: readonly T[],
  now: number,
  prerecordMs: number,
): [T[], T[]] {
  const horizon = now - prerecordMs;
  const keep: T[] = [];
  const drop: T[] = [];
  for (const segment of ring) (segment.endMs <= horizon ? drop : keep).push(segment);
  return [keep, drop];
}
