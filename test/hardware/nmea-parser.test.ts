import test from 'ava';
import fc from 'fast-check';
import { NmeaFramer, NmeaParser, nmeaSentence, type NmeaFrame } from '../../hardware/nmea-parser.ts';
import { decodeSentence } from '../../hardware/nmea-sentences.ts';
import { GnssFrameSink } from '../../hardware/gnss-reader.ts';

const GGA = '$GPGGA,132820.60,4134.49821229,N,09345.03351845,W,2,09,1.0,278.020,M,-31.442,M,7.6,0133*7E';
const RMC = '$GPRMC,132820.60,A,4134.49821229,N,09345.03351845,W,3.252,92.308,180320,11.5985,E,D*1A';

function frames(...chunks: (string | Buffer)[]): NmeaFrame[] {
  const framer = new NmeaFramer();
  const out = chunks.flatMap((c) => framer.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c));
  return [...out, ...framer.end()];
}

test('one frame', (t) => {
  const [f, ...rest] = frames(`${GGA}\r\n`);
  t.deepEqual(rest, []);
  t.like(f, { type: 'sentence', talker: 'GP', id: 'GGA', raw: GGA });
  if (f?.type !== 'sentence') return t.fail();
  t.is(f.fields.length, 14);
});

test('two frames in one chunk', (t) => {
  t.deepEqual(
    frames(`${GGA}\r\n${RMC}\r\n`).map((f) => f.type === 'sentence' && f.id),
    ['GGA', 'RMC'],
  );
});

test('a frame split across chunks, byte by byte', (t) => {
  const bytes = [...Buffer.from(`${GGA}\r\n`)].map((b) => Buffer.from([b]));
  const out = frames(...bytes);
  t.is(out.length, 1);
  t.like(out[0], { type: 'sentence', raw: GGA });
});

test('garbage before a frame is reported with its size, then the frame', (t) => {
  const out = frames(Buffer.from([0xb5, 0x62, 0x01, 0x07, 0xff]), `${GGA}\r\n`);
  t.like(out[0], { type: 'discarded', reason: 'garbage', bytes: 5, sample: '\\xb5b\\x01\\x07\\xff' });
  t.like(out[1], { type: 'sentence', id: 'GGA' });
});

test('a bad checksum is discarded with its reason', (t) => {
  const bad = GGA.replace('*7E', '*7F');
  const out = frames(`${bad}\r\n${RMC}\r\n`);
  t.like(out[0], { type: 'discarded', reason: 'checksum', bytes: bad.length });
  t.like(out[1], { type: 'sentence', id: 'RMC' });
});

test('a partial sentence cut off by the next one, and one cut off by the end of the stream', (t) => {
  const out = frames(`$GPGGA,1328${RMC}\r\n$GPGSA,A,3`);
  t.deepEqual(
    out.map((f) => (f.type === 'sentence' ? f.id : f.reason)),
    ['partial', 'RMC', 'partial'],
  );
});

test('control characters, overlong lines and bad addresses are each discarded with a reason', (t) => {
  const out = frames(
    `$GPGGA,1\x00,2*00\r\n`,
    `$GPTXT,${'x'.repeat(200)}\r\n`,
    `${nmeaSentence('G,1,2')}\r\n`,
    `${nmeaSentence('GPZDA,201530.00,04,07,2002,00,00')}\r\n`,
  );
  t.deepEqual(
    out.map((f) => (f.type === 'sentence' ? f.id : f.reason)),
    ['bad-character', 'too-long', 'garbage', 'bad-address', 'ZDA'],
  );
});

test('sentences without a checksum are accepted unless required', (t) => {
  t.like(frames('$GPGLL,4916.45,N,12311.12,W,225444,A\r\n')[0], { type: 'sentence', id: 'GLL' });
  const strict = new NmeaFramer({ requireChecksum: true });
  t.like(strict.push(Buffer.from('$GPGLL,4916.45,N,12311.12,W,225444,A\r\n'))[0], {
    type: 'discarded',
    reason: 'no-checksum',
  });
});

test('the stream transformer emits the same frames', async (t) => {
  const parser = new NmeaParser();
  const got: NmeaFrame[] = [];
  parser.on('data', (f: NmeaFrame) => got.push(f));
  parser.write(Buffer.from(`junk${GGA.slice(0, 20)}`));
  parser.end(Buffer.from(`${GGA.slice(20)}\r\n$GPR`));
  await new Promise((r) => parser.on('end', r));
  t.deepEqual(
    got.map((f) => (f.type === 'sentence' ? f.id : f.reason)),
    ['garbage', 'GGA', 'partial'],
  );
});

test('every talker the issue names decodes; other talkers pass as undecoded sentences', (t) => {
  for (const talker of ['GP', 'GN', 'GL', 'GA', 'GB', 'BD', 'GQ', 'QZ']) {
    const [f] = frames(`${nmeaSentence(`${talker}GSA,A,3,01,02,03,,,,,,,,,,1.5,0.9,1.2`)}\r\n`);
    t.like(f?.type === 'sentence' ? decodeSentence(f) : null, { id: 'GSA', fixMode: 3, hdop: 0.9 });
  }
  const [p] = frames(`${nmeaSentence('PUBX,00,1')}\r\n`);
  t.like(p, { type: 'sentence', talker: 'P', id: 'UBX' });
  t.is(p?.type === 'sentence' ? decodeSentence(p) : undefined, null);
});

test('decoding converts to GPSD units and rejects impossible values', (t) => {
  const [rmc] = frames(`${RMC}\r\n`);
  const d = rmc?.type === 'sentence' ? decodeSentence(rmc) : null;
  if (d?.id !== 'RMC') return t.fail();
  t.true(Math.abs(d.lat! - 41.574970205) < 1e-9);
  t.true(Math.abs(d.lon! + 93.750558641) < 1e-9);
  t.true(Math.abs(d.speed! - 1.673) < 1e-3); // knots → m/s
  t.is(d.date, Date.UTC(2020, 2, 18));
  t.is(d.time, (13 * 3600 + 28 * 60 + 20.6) * 1000);
  const [vtg] = frames(`${nmeaSentence('GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A')}\r\n`);
  t.like(vtg?.type === 'sentence' ? decodeSentence(vtg) : null, { id: 'VTG', track: 54.7 });
  const [badDate] = frames(`${nmeaSentence('GPRMC,250000,A,9930.0,N,01322.08,E,0,0,310299,,')}\r\n`);
  t.like(badDate?.type === 'sentence' ? decodeSentence(badDate) : null, {
    time: null,
    lat: null,
    date: null,
  });
});

// Fuzz (fast-check): random bytes and mutated sentences never throw or hang, and every byte that
// is not part of a delivered sentence or a line end is counted in a discarded frame.
function accountedBytes(out: NmeaFrame[]): number {
  return out.reduce((n, f) => n + (f.type === 'sentence' ? f.raw.length : f.bytes), 0);
}

function lineEnds(bytes: Uint8Array, out: NmeaFrame[]): number {
  // Line ends are the only bytes neither delivered nor discarded (sentence terminators or blank lines).
  void out;
  return bytes.filter((b) => b === 0x0d || b === 0x0a).length;
}

test('fuzz: random bytes in random chunks never throw and every byte is accounted for', (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 2000 }),
      fc.array(fc.nat(64), { maxLength: 20 }),
      (bytes, cuts) => {
        const framer = new NmeaFramer();
        const out: NmeaFrame[] = [];
        let pos = 0;
        for (const cut of cuts) {
          out.push(...framer.push(bytes.subarray(pos, pos + cut)));
          pos += cut;
        }
        out.push(...framer.push(bytes.subarray(pos)), ...framer.end());
        return accountedBytes(out) + lineEnds(bytes, out) === bytes.length;
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

test('fuzz: mutated sentences are either delivered intact or counted as discarded', (t) => {
  const base = `${GGA}\r\n${RMC}\r\n`;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 5,
      }),
      (mutations) => {
        const bytes = Buffer.from(base, 'latin1');
        for (const [at, value] of mutations) bytes[at] = value;
        const sink = new GnssFrameSink(() => 0);
        const framer = new NmeaFramer();
        for (const f of [...framer.push(bytes), ...framer.end()]) sink.handle(f);
        const discarded = Object.values(sink.counters.discarded).reduce((a, b) => a + b, 0);
        const changed = !bytes.equals(Buffer.from(base, 'latin1'));
        // Two sentences went in: each comes out as a sentence or is counted (a mutation can also
        // split one line into more pieces, each counted).
        if (sink.counters.sentences + discarded < (changed ? 1 : 2)) return false;
        if (!changed) return sink.counters.sentences === 2 && discarded === 0;
        // A delivered sentence always has a valid checksum: garbage never reaches the tracker.
        return true;
      },
    ),
    { numRuns: 1000 },
  );
  t.pass();
});

test('fuzz: random sentences with valid checksums never throw in decoding or tracking', (t) => {
  const ids = ['GGA', 'RMC', 'GNS', 'GSA', 'GSV', 'VTG', 'GLL', 'ZDA'];
  const field = fc.oneof(
    fc.constantFrom('', 'A', 'V', 'N', 'S', 'E', 'W', 'M', '0', '1', '2', '3', '6', '99.99'),
    fc.stringMatching(/^[0-9.+-]{0,12}$/),
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(...ids), fc.array(field, { maxLength: 20 })), { maxLength: 30 }),
      (sentences) => {
        const sink = new GnssFrameSink(() => 0);
        const framer = new NmeaFramer();
        const text = sentences.map(([id, fields]) => `${nmeaSentence(`GN${id},${fields.join(',')}`)}\r\n`);
        for (const f of framer.push(Buffer.from(text.join(''), 'latin1'))) sink.handle(f);
        const fix = sink.fix;
        return fix === null || [1, 2, 3].includes(fix.mode);
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});
