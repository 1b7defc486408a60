// NMEA parsing throughput: framer + decoder + fix tracker over the sixteen reference logs
// (repeated), as a ratio against splitting the same bytes into lines and fields in the same run.
// Run: node --import=tsx bench/nmea.ts
import { readFileSync, readdirSync } from 'node:fs';
import { GnssFrameSink } from '../hardware/gnss-reader.ts';
import { NmeaFramer } from '../hardware/nmea-parser.ts';

const dir = new URL('../../shared/nmea/', import.meta.url).pathname;
const logs = readdirSync(dir).filter((f) => f.endsWith('.log'));
const one = Buffer.concat(logs.map((f) => readFileSync(`${dir}${f}`)));
const data = Buffer.concat(Array<Buffer>(100).fill(one));

const time = (fn: () => void) => {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
};
let fields = 0;
const baseline = time(() => {
  for (const line of data.toString('latin1').split('\n')) fields += line.split(',').length;
});
const sink = new GnssFrameSink(() => 0);
const ours = time(() => {
  const framer = new NmeaFramer();
  for (let i = 0; i < data.length; i += 4096)
    for (const f of framer.push(data.subarray(i, i + 4096))) sink.handle(f);
});
const mbps = data.length / 1e6 / (ours / 1000);
process.stdout.write(
  `nmea: ${(data.length / 1e6).toFixed(1)} MB, ${sink.counters.sentences} sentences in ${ours.toFixed(0)} ms = ` +
    `${mbps.toFixed(1)} MB/s (${Math.round((mbps * 1e6) / 11_520)}x a 115200-baud line); ` +
    `${(ours / baseline).toFixed(1)}x the time of split(',') (${baseline.toFixed(0)} ms, ${fields} fields)\n`,
);
