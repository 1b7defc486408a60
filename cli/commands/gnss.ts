import type { Command } from 'commander';
import { SerialGnss } from '../../hardware/gnss-serial.ts';
import type { GnssFix } from '../../hardware/gnss.ts';
import { RecorderError } from '../../protocol/errors.ts';
import { EXIT_OK } from '../output.ts';

/** `recorder gnss --port PATH [--baud N] [--json]`: one line per new fix until Ctrl-C or SIGTERM. */
export function registerGnss(program: Command, run: (action: () => Promise<number>) => Promise<void>): void {
  program
    .command('gnss')
    .description('read a GNSS receiver (NMEA 0183) and print each new fix in GPSD units')
    .requiredOption('--port <path>', 'serial device, e.g. /dev/ttyS1 or /dev/ttyUSB0')
    .option('--baud <n>', 'baud rate', '9600')
    .option(
      '--json',
      'one JSON object per fix: {mode, time, lat, lon, altMSL, speed, track, sats, hdop, ...}',
    )
    .action((opts: { port: string; baud: string; json?: boolean }) =>
      run(async () => {
        const baud = Number(opts.baud);
        if (!Number.isInteger(baud) || baud <= 0)
          throw new RecorderError('CLI_USAGE', `--baud must be a positive integer, got ${opts.baud}`);
        const reader = new SerialGnss({ port: opts.port, baud, failFast: true });
        reader.on('fix', (fix: GnssFix) => {
          const line = opts.json
            ? JSON.stringify({ class: 'TPV', ...rounded(fix), clockOffsetMs: reader.clockOffsetMs })
            : describe(fix, reader.clockOffsetMs);
          process.stdout.write(`${line}\n`);
        });
        reader.on('close', (port: string) =>
          process.stderr.write(`recorder gnss: ${port} closed, reopening\n`),
        );
        reader.on('open', (port: string) => {
          process.stderr.write(
            reader.counters.opens > 1
              ? `recorder gnss: ${port} reopened\n`
              : `recorder gnss: reading ${port} at ${baud} baud; Ctrl-C stops\n`,
          );
        });
        await reader.start();
        await new Promise<void>((resolve) => {
          const done = () => resolve();
          process.once('SIGINT', done);
          process.once('SIGTERM', done);
        });
        await reader.stop();
        const c = reader.counters;
        const discarded = Object.entries(c.discarded)
          .filter(([, n]) => n > 0)
          .map(([reason, n]) => `${reason} ${n}`);
        process.stderr.write(
          `recorder gnss: ${c.sentences} sentences, ${discarded.length ? `discarded: ${discarded.join(', ')} (${c.discardedBytes} bytes)` : 'nothing discarded'}\n`,
        );
        return EXIT_OK;
      }),
    );
}

/** GPSD's printed precision: 9 decimals of a degree (0.1 mm), mm of altitude, mm/s of speed. */
function rounded(fix: GnssFix): GnssFix {
  const r = (v: number | null, places: number) => (v === null ? null : Number(v.toFixed(places)));
  return {
    ...fix,
    lat: r(fix.lat, 9),
    lon: r(fix.lon, 9),
    altMSL: r(fix.altMSL, 3),
    speed: r(fix.speed, 3),
    track: r(fix.track, 4),
  };
}

function describe(fix: GnssFix, offset: number | null): string {
  const mode = ['', 'no fix', '2D', '3D'][fix.mode];
  const pos =
    fix.lat !== null && fix.lon !== null ? `${fix.lat.toFixed(7)} ${fix.lon.toFixed(7)}` : 'no position';
  const alt = fix.altMSL !== null ? ` alt ${fix.altMSL.toFixed(1)} m` : '';
  const speed = fix.speed !== null ? ` ${fix.speed.toFixed(2)} m/s` : '';
  const track = fix.track !== null ? ` track ${fix.track.toFixed(1)}°` : '';
  const sats = fix.sats !== null ? ` sats ${fix.sats}` : '';
  const hdop = fix.hdop !== null ? ` hdop ${fix.hdop}` : '';
  const clock = offset !== null ? ` clock ${offset >= 0 ? '+' : ''}${offset} ms` : '';
  return `${fix.time ?? 'time unknown'} ${mode} ${pos}${alt}${speed}${track}${sats}${hdop}${clock}`;
}
