// The NMEA reference suite (issue 4): every log in shared/nmea goes through a real pseudo-terminal
// pair (socat) into the real serialport-based reader, and the fix after each sentence is compared
// with GPSD's TPV report after that sentence: mode exactly, lat/lon within 1e-6°, time to the ms.
//
// Deliberate disagreements: none. Where GPSD's rules are not obvious the tracker follows them and
// says so (gnss-fix-tracker.ts): GGA/GNS, not GSA, decide 2D/3D once seen (Garmin 25LP, MTK-3329
// send `GSA,A,2` with an altitude); a GGA with zero satellites is no fix; an empty GGA quality needs
// three satellites and gives 2D (MyGuide 3100); a date only from a valid RMC or ZDA (Motorola T805).
import test, { type ExecutionContext } from 'ava';
import { readdirSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SerialGnss } from '../../hardware/gnss-serial.ts';
import type { GnssFix } from '../../hardware/gnss.ts';
import { replaySchedule } from '../../hardware/gnss-replay.ts';
import { NmeaFramer, type NmeaSentence } from '../../hardware/nmea-parser.ts';
import { ptyPair } from '../helpers/socat.ts';
import { tempDir } from '../helpers/temp.ts';

const NMEA_DIR = new URL('../../../shared/nmea/', import.meta.url).pathname;
const logs = readdirSync(NMEA_DIR)
  .filter((f) => f.endsWith('.log'))
  .sort();

interface Tpv {
  mode: number;
  time?: string;
  lat?: number;
  lon?: number;
}

/** The .chk file as (sentence, TPV reports printed after it) pairs. */
function expectations(chk: string): { raw: string; tpv: Tpv[] }[] {
  const out: { raw: string; tpv: Tpv[] }[] = [];
  for (const line of chk.split(/\r?\n/)) {
    if (line.startsWith('$') || line.startsWith('!')) out.push({ raw: line.trim(), tpv: [] });
    else if (line.startsWith('{"class":"TPV"')) out.at(-1)?.tpv.push(JSON.parse(line) as Tpv);
  }
  return out;
}

function compare(tpv: Tpv, fix: GnssFix): string[] {
  const problems: string[] = [];
  if (tpv.mode !== fix.mode) problems.push(`mode ${fix.mode}, GPSD ${tpv.mode}`);
  if ((tpv.time ?? null) !== fix.time) problems.push(`time ${fix.time}, GPSD ${tpv.time}`);
  for (const k of ['lat', 'lon'] as const) {
    const want = tpv[k];
    const got = fix[k];
    if (want === undefined ? got !== null : got === null || Math.abs(got - want) > 1e-6)
      problems.push(`${k} ${got}, GPSD ${want}`);
  }
  return problems;
}

async function replay(t: ExecutionContext, name: string, pace: 'fast' | 'receiver') {
  const log = await readFile(join(NMEA_DIR, name), 'latin1');
  const chk = await readFile(join(NMEA_DIR, `${name}.chk`), 'utf8');
  const schedule = replaySchedule(log);
  // What the framer makes of the bytes written, to know when the reader has seen all of it.
  const framer = new NmeaFramer();
  const written = schedule.flatMap((l) => framer.push(Buffer.from(l.line, 'latin1')));
  const expectedSentences = written.filter((f) => f.type === 'sentence').length;

  const pty = await ptyPair(t, tempDir(t));
  const reader = new SerialGnss({ port: pty.b, baud: 9600, failFast: true });
  const seen: { sentence: NmeaSentence; fix: GnssFix }[] = [];
  const allSeen = new Promise<void>((resolve) =>
    reader.on('sentence', (e: { sentence: NmeaSentence; fix: GnssFix }) => {
      seen.push(e);
      if (seen.length === expectedSentences) resolve();
    }),
  );
  await reader.start();
  t.teardown(() => reader.stop());
  const writer = await open(pty.a, 'w');
  const started = Date.now();
  try {
    if (pace === 'fast') {
      await writer.write(schedule.map((l) => l.line).join(''));
    } else {
      for (const line of schedule) {
        const wait = started + line.atMs - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        await writer.write(line.line);
      }
    }
    await Promise.race([
      allSeen,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`saw ${seen.length}/${expectedSentences}`)), 20_000),
      ),
    ]);
  } finally {
    await writer.close();
  }

  // Align the reader's sentences with the .chk's and compare after each TPV report.
  let i = 0;
  let compared = 0;
  const problems: string[] = [];
  for (const { raw, tpv } of expectations(chk)) {
    while (i < seen.length && seen[i]!.sentence.raw !== raw) i++;
    if (i >= seen.length) {
      problems.push(`the reader never delivered ${raw}`);
      break;
    }
    for (const report of tpv) {
      compared++;
      for (const p of compare(report, seen[i]!.fix)) problems.push(`${raw}: ${p}`);
    }
    i++;
  }
  t.deepEqual(problems, []);
  t.true(compared > 0);
  // Nothing bad in these logs went unreported: the reader's counters match the framer's.
  const discardedFrames = written.filter((f) => f.type === 'discarded').length;
  const counted = Object.values(reader.counters.discarded).reduce((a, b) => a + b, 0);
  t.is(counted, discardedFrames);
  return { compared, ms: Date.now() - started };
}

for (const name of logs) {
  test(`${name}: the reader agrees with GPSD over a real pty`, async (t) => {
    const { compared } = await replay(t, name, 'fast');
    t.log(`${compared} TPV reports compared`);
  });
}

test('mtk-3329.log at receiver pace agrees with GPSD too', async (t) => {
  const { ms } = await replay(t, 'mtk-3329.log', 'receiver');
  // The log spans 5 epochs one second apart: paced writing really took about that long.
  t.true(ms >= 3500, `took ${ms} ms`);
});

test('all sixteen reference logs are present', (t) => {
  t.is(logs.length, 16);
});
