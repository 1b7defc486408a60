import test from 'ava';
import { GnssFrameSink } from '../../hardware/gnss-reader.ts';
import type { GnssFix } from '../../hardware/gnss.ts';
import { NmeaFramer, nmeaSentence } from '../../hardware/nmea-parser.ts';

function feed(sink: GnssFrameSink, ...bodies: string[]): void {
  const framer = new NmeaFramer();
  for (const body of bodies)
    for (const f of framer.push(Buffer.from(`${nmeaSentence(body)}\r\n`))) sink.handle(f);
}

test('clock offset: GNSS minus system time, measured on the first sentence of each epoch', (t) => {
  let now = Date.parse('2026-11-23T12:00:00.000Z');
  const sink = new GnssFrameSink(() => now);
  feed(sink, 'GPRMC,120001.00,A,2813.6698,N,11256.3298,E,0.0,0.0,231126,,,A');
  t.is(sink.clockOffsetMs, 1000); // GNSS says 12:00:01, the system 12:00:00
  now += 300; // the GGA of the same epoch arrives later: not a new measurement
  feed(sink, 'GPGGA,120001.00,2813.6698,N,11256.3298,E,1,08,0.9,45.0,M,,M,,');
  t.is(sink.clockOffsetMs, 1000);
  now += 700;
  feed(sink, 'GPRMC,120002.00,A,2813.6698,N,11256.3298,E,0.0,0.0,231126,,,A');
  t.is(sink.clockOffsetMs, 1000);
});

test('no clock offset before a date is known, nor from a receiver without a fix', (t) => {
  const sink = new GnssFrameSink(() => 0);
  feed(sink, 'GPGGA,120001.00,2813.6698,N,11256.3298,E,1,08,0.9,45.0,M,,M,,');
  t.is(sink.clockOffsetMs, null);
  feed(sink, 'GPRMC,120002.00,V,,,,,,,231126,,,N');
  t.is(sink.clockOffsetMs, null);
  t.is(sink.fix?.time, null); // the first cycle had no date: a position without a time
});

test('midnight: a GGA after 23:59:59 rolls the date before the next RMC brings it', (t) => {
  const sink = new GnssFrameSink(() => 0);
  const fixes: GnssFix[] = [];
  sink.on('fix', (f: GnssFix) => fixes.push(f));
  feed(
    sink,
    'GPRMC,235959.00,A,2813.6698,N,11256.3298,E,0.0,0.0,231126,,,A',
    'GPGGA,235959.00,2813.6698,N,11256.3298,E,1,08,0.9,45.0,M,,M,,',
    'GPGGA,000000.00,2813.6698,N,11256.3298,E,1,08,0.9,45.0,M,,M,,',
    'GPRMC,000000.00,A,2813.6698,N,11256.3298,E,0.0,0.0,241126,,,A',
    'GPGGA,000001.00,2813.6698,N,11256.3298,E,1,08,0.9,45.0,M,,M,,',
  );
  t.deepEqual(
    fixes.map((f) => f.time),
    ['2026-11-23T23:59:59.000Z', '2026-11-24T00:00:00.000Z'],
  );
});

test('one fix per cycle: the sentence that ended the first cycle ends the next ones', (t) => {
  const sink = new GnssFrameSink(() => 0);
  const fixes: GnssFix[] = [];
  sink.on('fix', (f: GnssFix) => fixes.push(f));
  const epoch = (s: string) => [
    `GPGGA,1200${s}.00,2813.6698,N,11256.3298,E,1,08,0.9,45.0,M,,M,,`,
    'GPGSA,A,3,01,02,03,04,,,,,,,,,1.5,0.9,1.2',
    `GPRMC,1200${s}.00,A,2813.6698,N,11256.3298,E,1.0,90.0,231126,,,A`,
  ];
  feed(sink, ...epoch('01'));
  t.is(fixes.length, 0); // not yet known where a cycle ends
  feed(sink, ...epoch('02').slice(0, 1));
  t.is(fixes.length, 1); // the new time closed the first cycle: RMC ends cycles
  feed(sink, ...epoch('02').slice(1));
  t.is(fixes.length, 2); // closed by its RMC, without waiting for the next epoch
  t.like(fixes[1], { mode: 3, time: '2026-11-23T12:00:02.000Z', speed: 1852 / 3600, track: 90, sats: 8 });
});
