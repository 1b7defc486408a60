import test from 'ava';
import fc from 'fast-check';
import { crc32 as zlibCrc32 } from 'node:zlib';
import {
  FRAME_OVERHEAD,
  FrameDecoder,
  FrameType,
  crc32,
  encodeFrame,
  type DecodedItem,
  type Frame,
} from '../../protocol/serial-frame.ts';

const frameA: Frame = { type: FrameType.DATA, seq: 7, payload: Buffer.from('hello, device') };
const frameB: Frame = { type: FrameType.ACK, seq: 65535, payload: Buffer.alloc(0) };

function frames(items: DecodedItem[]): Frame[] {
  return items.flatMap((i) => (i.kind === 'frame' ? [i.frame] : []));
}
function discarded(items: DecodedItem[]): number {
  return items.reduce((n, i) => n + (i.kind === 'discarded' ? i.discarded.bytes : 0), 0);
}

test('CRC-32/ISO-HDLC check value and agreement with zlib', (t) => {
  t.is(crc32(Buffer.from('123456789')), 0xcbf43926);
  const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff));
  t.is(crc32(data), zlibCrc32(data));
});

test('one frame', (t) => {
  const decoder = new FrameDecoder();
  const bytes = encodeFrame(frameA);
  t.is(bytes.length, FRAME_OVERHEAD + frameA.payload.length);
  const items = decoder.push(bytes);
  t.deepEqual(items, [{ kind: 'frame', frame: frameA }]);
  t.is(decoder.pending, 0);
});

test('two frames in one chunk', (t) => {
  const items = new FrameDecoder().push(Buffer.concat([encodeFrame(frameA), encodeFrame(frameB)]));
  t.deepEqual(frames(items), [frameA, frameB]);
  t.is(discarded(items), 0);
});

test('a frame split across chunks, byte by byte', (t) => {
  const decoder = new FrameDecoder();
  const bytes = encodeFrame(frameA);
  const out: DecodedItem[] = [];
  for (const b of bytes) out.push(...decoder.push(Buffer.from([b])));
  t.deepEqual(out, [{ kind: 'frame', frame: frameA }]);
});

test('garbage before a frame is discarded and counted', (t) => {
  const decoder = new FrameDecoder();
  const items = decoder.push(
    Buffer.concat([Buffer.from([0x00, 0xa5, 0x11, 0xff, 0x5a]), encodeFrame(frameA)]),
  );
  t.deepEqual(items, [
    { kind: 'discarded', discarded: { reason: 'garbage', bytes: 5 } },
    { kind: 'frame', frame: frameA },
  ]);
  t.is(decoder.discardedTotals.garbage, 5);
});

test('a bad checksum discards the frame and resynchronises on the next', (t) => {
  const decoder = new FrameDecoder();
  const bad = encodeFrame(frameA);
  bad[bad.length - 1]! ^= 0x01;
  const items = decoder.push(Buffer.concat([bad, encodeFrame(frameB)]));
  t.deepEqual(frames(items), [frameB]);
  t.true(items.some((i) => i.kind === 'discarded' && i.discarded.reason === 'bad-crc'));
  t.is(discarded(items), bad.length);
});

test('a corrupted length is caught by the header check, not waited for', (t) => {
  const decoder = new FrameDecoder();
  const bad = encodeFrame(frameA);
  bad[5]! ^= 0x40;
  const items = decoder.push(Buffer.concat([bad, encodeFrame(frameB)]));
  t.deepEqual(frames(items), [frameB]);
  t.true(items.some((i) => i.kind === 'discarded' && i.discarded.reason === 'bad-header'));
  t.is(decoder.pending, 0);
});

test('an oversize length is refused', (t) => {
  const decoder = new FrameDecoder({ maxPayload: 16 });
  const big = encodeFrame({ type: FrameType.DATA, seq: 1, payload: Buffer.alloc(17) });
  const items = decoder.push(Buffer.concat([big, encodeFrame(frameB)]));
  t.deepEqual(frames(items), [frameB]);
  t.true(decoder.discardedTotals.oversize >= 1);
  t.is(discarded(items), big.length);
});

test('fuzz: random bytes never throw, and every byte is a frame or counted', (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), (chunks) => {
      const decoder = new FrameDecoder({ maxPayload: 256 });
      let accounted = 0;
      let total = 0;
      for (const c of chunks) {
        total += c.length;
        for (const item of decoder.push(c)) {
          accounted +=
            item.kind === 'frame' ? FRAME_OVERHEAD + item.frame.payload.length : item.discarded.bytes;
        }
      }
      for (const item of decoder.flush()) accounted += item.kind === 'discarded' ? item.discarded.bytes : 0;
      return accounted === total;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('fuzz: mutated frames never throw; intact frames after them are still found', (t) => {
  const frameArb = fc.record({
    type: fc.constantFrom(FrameType.DATA, FrameType.ACK, FrameType.RESET),
    seq: fc.integer({ min: 0, max: 0xffff }),
    payload: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  });
  fc.assert(
    fc.property(
      fc.array(frameArb, { minLength: 1, maxLength: 6 }),
      fc.array(fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }), drop: fc.boolean() }), {
        maxLength: 5,
      }),
      fc.integer({ min: 1, max: 64 }),
      frameArb,
      (list, mutations, chunkSize, sentinel) => {
        const bytes = Buffer.concat(list.map((f) => encodeFrame(f)));
        let mutated = Buffer.from(bytes);
        for (const m of mutations) {
          const at = m.at % mutated.length;
          if (m.drop) mutated = Buffer.concat([mutated.subarray(0, at), mutated.subarray(at + 1)]);
          else mutated[at]! ^= 1 << m.bit;
        }
        const decoder = new FrameDecoder({ maxPayload: 256 });
        const items: DecodedItem[] = [];
        for (let i = 0; i < mutated.length; i += chunkSize)
          items.push(...decoder.push(mutated.subarray(i, i + chunkSize)));
        // The line goes quiet, then a good frame: it must come through whatever came before.
        items.push(...decoder.flush(), ...decoder.push(encodeFrame(sentinel)));
        const got = frames(items);
        const last = got[got.length - 1];
        const accounted = items.reduce(
          (n, i) => n + (i.kind === 'frame' ? FRAME_OVERHEAD + i.frame.payload.length : i.discarded.bytes),
          0,
        );
        return (
          last !== undefined &&
          last.seq === sentinel.seq &&
          last.payload.equals(sentinel.payload) &&
          accounted === mutated.length + FRAME_OVERHEAD + sentinel.payload.length &&
          (mutations.length > 0 || got.length === list.length + 1)
        );
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});
