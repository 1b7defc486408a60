// One contract for every GnssSource (STYLE.md "Hardware"): the simulated driver replaying a log
// and the real serial driver reading the same log from a socat pty must behave the same.
import test, { type ExecutionContext } from 'ava';
import { open, readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { SerialGnss } from '../../hardware/gnss-serial.ts';
import { SimGnss, DEFAULT_SIM_FIX } from '../../hardware/gnss-sim.ts';
import type { GnssFix, GnssSource } from '../../hardware/gnss.ts';
import { nmeaSentence } from '../../hardware/nmea-parser.ts';
import { ptyPair } from '../helpers/socat.ts';
import { tempDir } from '../helpers/temp.ts';

const LOG = new URL('../../../shared/nmea/nmea-fuzzy-cases.log', import.meta.url).pathname;
const SYSTEM_NOW = Date.parse('2020-03-18T13:28:20.000Z');

interface Driver {
  name: string;
  make(t: ExecutionContext): Promise<{ source: GnssSource; feed(): Promise<void> }>;
}

const drivers: Driver[] = [
  {
    name: 'SimGnss',
    async make() {
      const source = new SimGnss({ file: LOG, speed: Infinity, now: () => SYSTEM_NOW });
      return { source, feed: async () => {} };
    },
  },
  {
    name: 'SerialGnss',
    async make(t) {
      const pty = await ptyPair(t, tempDir(t));
      const source = new SerialGnss({ port: pty.b, now: () => SYSTEM_NOW, failFast: true });
      return {
        source,
        feed: async () => {
          const w = await open(pty.a, 'w');
          await w.write(await readFile(LOG));
          await w.close();
        },
      };
    },
  },
];

for (const driver of drivers) {
  test(`${driver.name}: reports one fix per cycle, the clock offset, and stops`, async (t) => {
    const { source, feed } = await driver.make(t);
    t.is(source.fix, null);
    t.is(source.clockOffsetMs, null);
    const fixes: GnssFix[] = [];
    source.on('fix', (f: GnssFix) => fixes.push(f));
    t.teardown(() => source.stop());
    await source.start();
    await feed();
    const deadline = Date.now() + 10_000;
    while (fixes.length < 14 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // 14 GGA+RMC cycles in the log. The first is closed by the second's GGA; from then on RMC is
    // known to end a cycle, so the last one is reported without waiting for another.
    await new Promise((r) => setTimeout(r, 50));
    t.is(fixes.length, 14);
    t.deepEqual(fixes[0], {
      mode: 3,
      time: '2020-03-18T13:28:20.600Z',
      lat: fixes[0]!.lat,
      lon: fixes[0]!.lon,
      altMSL: 278.02,
      speed: fixes[0]!.speed,
      track: 92.308,
      sats: 9,
      hdop: 1,
    });
    t.true(Math.abs(fixes[0]!.lat! - 41.574970205) < 1e-6);
    // Fixes come in time order, one per epoch.
    const times = fixes.map((f) => Date.parse(f.time!));
    t.deepEqual(
      [...times].sort((a, b) => a - b),
      times,
    );
    t.is(new Set(times).size, times.length);
    // GNSS minus system time, from the last timed sentence (13:39:00.900 vs 13:28:20.000).
    t.is(source.clockOffsetMs, Date.parse('2020-03-18T13:39:00.900Z') - SYSTEM_NOW);
    await source.stop();
    const n = fixes.length;
    await new Promise((r) => setTimeout(r, 100));
    t.is(fixes.length, n);
  });
}

test('SimGnss with a fixed position reports it with the system time, offset 0', async (t) => {
  let now = Date.parse('2026-11-23T10:00:00.000Z');
  const sim = new SimGnss({ intervalMs: 10, now: () => now });
  t.teardown(() => sim.stop());
  const first = once(sim, 'fix');
  await sim.start();
  const [fix] = (await first) as [GnssFix];
  t.deepEqual(fix, { ...DEFAULT_SIM_FIX, time: '2026-11-23T10:00:00.000Z' });
  t.is(sim.clockOffsetMs, 0);
  now += 1000;
  const [next] = (await once(sim, 'fix')) as [GnssFix];
  t.is(next.time, '2026-11-23T10:00:01.000Z');
});

test('SimGnss replays at receiver pace when asked (speed 1 ≈ 1 s per epoch)', async (t) => {
  const text = [
    nmeaSentence('GPGGA,120000.00,2813.6698,N,11256.3298,E,1,08,0.9,45.0,M,,M,,'),
    nmeaSentence('GPGGA,120001.00,2813.6698,N,11256.3298,E,1,08,0.9,45.0,M,,M,,'),
    nmeaSentence('GPGGA,120002.00,2813.6698,N,11256.3298,E,1,08,0.9,45.0,M,,M,,'),
  ].join('\r\n');
  const sim = new SimGnss({ text, speed: 4 });
  t.teardown(() => sim.stop());
  const started = Date.now();
  await sim.start();
  await once(sim, 'end');
  const ms = Date.now() - started;
  // Two one-second gaps at four times receiver speed: about 500 ms.
  t.true(ms >= 450 && ms < 3000, `took ${ms} ms`);
  t.is(sim.counters.sentences, 3);
  t.is(sim.counters.discarded.checksum, 0);
  t.like(sim.fix, { mode: 3, lat: 28.22783 });
});

test('SerialGnss: the port disappears (socat killed) and comes back: the reader reopens and resumes', async (t) => {
  const dir = tempDir(t);
  const pty = await ptyPair(t, dir);
  const reader = new SerialGnss({ port: pty.b, reopenMinMs: 50, reopenMaxMs: 400 });
  t.teardown(() => reader.stop());
  const sentences: string[] = [];
  reader.on('sentence', (e: { sentence: { raw: string } }) => sentences.push(e.sentence.raw));
  const portErrors: unknown[] = [];
  reader.on('port-error', (e) => portErrors.push(e));
  await reader.start();
  const write = async (line: string) => {
    const w = await open(pty.a, 'w');
    await w.write(`${line}\r\n`);
    await w.close();
  };
  const waitFor = async (what: () => boolean, label: string) => {
    const deadline = Date.now() + 10_000;
    while (!what()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const one = nmeaSentence('GPGGA,120000.00,2813.6698,N,11256.3298,E,1,08,0.9,45.0,M,,M,,');
  await write(one);
  await waitFor(() => sentences.length === 1, 'the first sentence');

  const closed = once(reader, 'close');
  await pty.kill();
  await closed;
  t.false(reader.isOpen);
  // While the link is gone, opening fails and is retried with backoff, reported but not thrown.
  await waitFor(() => portErrors.length >= 2, 'failed reopen attempts');
  t.like(portErrors[0], { code: 'GNSS_PORT_UNAVAILABLE' });

  await pty.restart();
  await waitFor(() => reader.isOpen, 'the reopen');
  const two = nmeaSentence('GPGGA,120001.00,2813.6698,N,11256.3298,E,1,08,0.9,45.0,M,,M,,');
  await write(two);
  await waitFor(() => sentences.length === 2, 'a sentence after the reopen');
  t.deepEqual(sentences, [one, two]);
  t.is(reader.counters.opens, 2);
});

test('SerialGnss with failFast rejects a missing port with GNSS_PORT_UNAVAILABLE', async (t) => {
  const reader = new SerialGnss({ port: '/nonexistent/tty', failFast: true });
  await t.throwsAsync(reader.start(), { message: /GNSS_PORT_UNAVAILABLE/ });
});
