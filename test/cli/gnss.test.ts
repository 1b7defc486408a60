import test from 'ava';
import { open, readFile } from 'node:fs/promises';
import { runRecorder, spawnRecorder } from '../helpers/cli.ts';
import { ptyPair } from '../helpers/socat.ts';
import { tempDir } from '../helpers/temp.ts';

const LOG = new URL('../../../shared/nmea/ublox-f9p-hpnmea.log', import.meta.url).pathname;

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`recorder gnss --json prints one object per fix and stops cleanly on ${signal}`, async (t) => {
    const pty = await ptyPair(t, tempDir(t));
    const child = spawnRecorder(['gnss', '--port', pty.b, '--baud', '115200', '--json']);
    t.teardown(() => child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // Write only once the reader has the port open; then wait for the fixes.
    const w = await open(pty.a, 'w');
    // Generous: a loaded 2-core CI machine may take many seconds to start the reader.
    const deadline = Date.now() + 60_000;
    let written = false;
    while (stdout.split('\n').length < 10 && Date.now() < deadline) {
      if (!written && stderr.includes('reading')) {
        await w.write(await readFile(LOG));
        written = true;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await w.close();
    t.true(written, `the reader never said it was reading: ${stderr}`);
    child.kill(signal);
    t.is(await exited, 0, stderr);
    const fixes = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    t.true(fixes.length >= 9, stdout);
    for (const key of ['mode', 'time', 'lat', 'lon', 'altMSL', 'speed', 'track', 'sats', 'hdop'])
      t.true(key in fixes[0]!, `${key} missing`);
    const fixed = fixes.find((f) => f.mode === 3)!;
    t.regex(String(fixed.time), /^2\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    t.is(typeof fixed.lat, 'number');
    t.regex(stderr, /recorder gnss: \d+ sentences/);
  });
}

test('recorder gnss with a missing port exits 2 naming the code', async (t) => {
  const r = await runRecorder(['gnss', '--port', '/nonexistent/ttyX']);
  t.is(r.code, 2);
  t.regex(r.stderr, /GNSS_PORT_UNAVAILABLE/);
});
