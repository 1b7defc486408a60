import test from 'ava';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SimBattery } from '../../hardware/battery-sim.ts';
import { SysfsBattery } from '../../hardware/battery-sysfs.ts';
import type { ButtonPress } from '../../hardware/buttons.ts';
import { createHardware, createStorage, type HardwareProfile } from '../../hardware/factory.ts';
import { SerialGnss } from '../../hardware/gnss-serial.ts';
import { SimGnss } from '../../hardware/gnss-sim.ts';
import { GpioButtons } from '../../hardware/gpio-buttons.ts';
import { GpioIndicators } from '../../hardware/gpio-indicators.ts';
import { SimButtons, SimIndicators } from '../../hardware/gpio-sim.ts';
import { gpiodStandIn } from '../helpers/gpiod-standin.ts';
import { tempDir } from '../helpers/temp.ts';
import { waitFor } from '../helpers/wait.ts';

function profile(overrides: Partial<HardwareProfile> = {}): HardwareProfile {
  return {
    gpio: { driver: 'sim', chip: 'gpiochip0' },
    buttons: { record: { line: 17, activeLow: true }, mark: { line: 18, activeLow: false } },
    indicators: { 'led-video': { line: 20, activeLow: false } },
    press: { debounceMs: 30, longMs: 1500, doubleMs: 400 },
    gnss: { driver: 'sim', port: '/dev/ttyS1', baud: 9600 },
    battery: { driver: 'sim', path: '/sys/class/power_supply/battery' },
    ...overrides,
  };
}

test('all simulated: sim drivers, one rec:hardware line per part naming its driver', async (t) => {
  const lines: string[] = [];
  const hw = await createHardware(profile(), { log: (l) => lines.push(l) });
  t.true(hw.buttons instanceof SimButtons);
  t.true(hw.indicators instanceof SimIndicators);
  t.true(hw.gnss instanceof SimGnss);
  t.true(hw.battery instanceof SimBattery);
  t.deepEqual(hw.drivers, { gpio: 'sim', gnss: 'sim', battery: 'sim' });
  t.deepEqual(lines, [
    'rec:hardware buttons: sim (record=17 active-low, mark=18; long 1500 ms, double 400 ms, debounce 30 ms)',
    'rec:hardware indicators: sim (led-video=20)',
    'rec:hardware gnss: sim (fixed position)',
    'rec:hardware battery: sim',
  ]);
  // The sim buttons use the profile's press timing.
  await hw.buttons.start();
  const presses: ButtonPress[] = [];
  hw.buttons.on('press', (p: ButtonPress) => presses.push(p));
  (hw.buttons as SimButtons).press('record', { double: true });
  t.like(presses, [{ button: 'record', kind: 'double' }]);
});

test('real drivers where this machine has them: serial GNSS, sysfs battery, gpiod through its tools', async (t) => {
  const dir = tempDir(t);
  const bat = join(dir, 'BAT0');
  mkdirSync(bat);
  const standIn = gpiodStandIn(dir);
  const lines: string[] = [];
  const hw = await createHardware(
    profile({
      gpio: { driver: 'gpiod', chip: 'gpiochip0' },
      gnss: { driver: 'serial', port: join(dir, 'tty-not-yet'), baud: 4800 },
      battery: { driver: 'sysfs', path: bat },
    }),
    {
      log: (l) => lines.push(l),
      gpiod: { gpiomon: standIn.gpiomon, gpioset: standIn.gpioset, requireChip: false },
    },
  );
  t.true(hw.buttons instanceof GpioButtons);
  t.true(hw.indicators instanceof GpioIndicators);
  t.true(hw.gnss instanceof SerialGnss);
  t.true(hw.battery instanceof SysfsBattery);
  t.regex(lines[0]!, /^rec:hardware buttons: gpiod on gpiochip0 \(record=17 active-low/);
  t.regex(lines[2]!, /gnss: serial .*tty-not-yet at 4800 baud; the port does not exist yet/);
  t.is(lines[3], `rec:hardware battery: sysfs ${bat}`);
  // The gpiod buttons really run the (stand-in) tool with the profile's lines.
  const presses: ButtonPress[] = [];
  hw.buttons.on('press', (p: ButtonPress) => presses.push(p));
  await hw.buttons.start();
  t.teardown(() => hw.buttons.stop());
  await waitFor(() => standIn.monRuns() === 1, 10_000, 'gpiomon');
  t.deepEqual(standIn.monArgs(), ['-b -F %o %e %s %n gpiochip0 17 18']);
  const t0 = Date.now();
  standIn.edge(17, 0, t0);
  standIn.edge(17, 1, t0 + 1600);
  await waitFor(() => presses.length === 1, 10_000, 'a long press');
  t.like(presses[0], { button: 'record', kind: 'long' });
});

test('gnss none gives no GNSS source', async (t) => {
  const lines: string[] = [];
  const hw = await createHardware(profile({ gnss: { driver: 'none', port: '', baud: 9600 } }), {
    log: (l) => lines.push(l),
  });
  t.is(hw.gnss, null);
  t.true(lines.includes('rec:hardware gnss: none'));
});

test('no silent fallback: onoff without sysfs GPIO is an error naming gpiod and sim', async (t) => {
  const lines: string[] = [];
  const error = await t.throwsAsync(
    createHardware(profile({ gpio: { driver: 'onoff', chip: 'gpiochip0' } }), { log: (l) => lines.push(l) }),
  );
  t.like(error, { code: 'GPIO_UNAVAILABLE', context: { alternatives: ['gpiod', 'sim'] } });
  t.deepEqual(lines, [], 'nothing claims to run');
});

test('no silent fallback: gpiod without the chip, or without the tools, is an error naming onoff and sim', async (t) => {
  const noChip = await t.throwsAsync(
    createHardware(profile({ gpio: { driver: 'gpiod', chip: 'gpiochip9' } }), { log: () => {} }),
  );
  t.like(noChip, {
    code: 'GPIO_UNAVAILABLE',
    context: { chip: 'gpiochip9', alternatives: ['onoff', 'sim'] },
  });
  t.regex(noChip!.message, /\/dev\/gpiochip9/);
  const noTool = await t.throwsAsync(
    createHardware(profile({ gpio: { driver: 'gpiod', chip: 'gpiochip0' } }), {
      log: () => {},
      gpiod: { gpiomon: '/nonexistent/gpiomon', requireChip: false },
    }),
  );
  t.like(noTool, { code: 'GPIO_UNAVAILABLE', context: { alternatives: ['onoff', 'sim'] } });
});

test('no silent fallback: a missing battery path is an error naming sim; an unknown driver names the valid ones', async (t) => {
  const bat = await t.throwsAsync(
    createHardware(profile({ battery: { driver: 'sysfs', path: '/nonexistent/BAT9' } }), { log: () => {} }),
  );
  t.like(bat, { code: 'BATTERY_UNAVAILABLE', context: { alternatives: ['sim'] } });
  const unknown = await t.throwsAsync(
    createHardware(profile({ gnss: { driver: 'gpsd' as 'sim', port: '', baud: 9600 } }), { log: () => {} }),
  );
  t.like(unknown, { code: 'HARDWARE_DRIVER_UNKNOWN', context: { alternatives: ['sim', 'serial', 'none'] } });
});

test('a simulated GNSS can replay a reference log through the factory', async (t) => {
  const file = new URL('../../../shared/nmea/quectel-eg25-g-2.log', import.meta.url).pathname;
  const lines: string[] = [];
  const hw = await createHardware(profile(), {
    log: (l) => lines.push(l),
    simGnss: { file, speed: Infinity },
  });
  t.true(lines.includes(`rec:hardware gnss: sim (replaying ${file} as fast as possible)`));
  await hw.gnss!.start();
  t.teardown(() => hw.gnss!.stop());
  await waitFor(() => hw.gnss!.fix?.mode === 3, 10_000, 'a 3D fix');
  t.true(Math.abs(hw.gnss!.fix!.lat! - 60.022) < 0.01);
});

test('createStorage measures the evidence dir', async (t) => {
  const r = await createStorage(tempDir(t)).read();
  t.is(r.evidenceBytes, 0);
  t.true(r.totalBytes > 0);
});
