// One contract for every Indicators driver: simulated, and GPIO over gpiod (stand-in gpioset).
import test, { type ExecutionContext } from 'ava';
import { GpioIndicators } from '../../hardware/gpio-indicators.ts';
import { GpiodDriver } from '../../hardware/gpio-gpiod.ts';
import { SimIndicators } from '../../hardware/gpio-sim.ts';
import type { Indicators } from '../../hardware/indicators.ts';
import { gpiodStandIn, waitUntil } from '../helpers/gpiod-standin.ts';
import { tempDir } from '../helpers/temp.ts';

const drivers: { name: string; make(t: ExecutionContext): Indicators }[] = [
  { name: 'SimIndicators', make: () => new SimIndicators() },
  {
    name: 'GpioIndicators on gpiod',
    make(t) {
      const standIn = gpiodStandIn(tempDir(t));
      const driver = new GpiodDriver({ gpiomon: standIn.gpiomon, gpioset: standIn.gpioset });
      return new GpioIndicators({
        driver,
        pins: { 'led-video': { line: 20, activeLow: false }, vibration: { line: 21, activeLow: true } },
      });
    },
  },
];

for (const driver of drivers) {
  test(`${driver.name}: patterns are remembered per indicator, and close turns everything off`, async (t) => {
    const indicators = driver.make(t);
    t.teardown(() => indicators.close());
    t.is(indicators.state('led-video'), 'off');
    indicators.set('led-video', 'on');
    indicators.set('led-power', 'blink-slow');
    indicators.set('vibration', 'blink-fast');
    t.is(indicators.state('led-video'), 'on');
    t.is(indicators.state('led-power'), 'blink-slow');
    t.is(indicators.state('vibration'), 'blink-fast');
    t.is(indicators.state('buzzer'), 'off');
    indicators.set('led-video', 'off');
    t.is(indicators.state('led-video'), 'off');
    await indicators.close();
    t.is(indicators.state('led-power'), 'off');
  });
}

test('GpioIndicators drives physical levels with active-low applied, blinks and pulses by itself', async (t) => {
  const standIn = gpiodStandIn(tempDir(t));
  const driver = new GpiodDriver({ chip: 'gpiochip0', gpiomon: standIn.gpiomon, gpioset: standIn.gpioset });
  const indicators = new GpioIndicators({
    driver,
    pins: { 'led-video': { line: 20, activeLow: false }, vibration: { line: 21, activeLow: true } },
  });
  t.teardown(() => indicators.close());
  indicators.set('led-video', 'on');
  indicators.set('vibration', { pulseMs: 60, times: 2 });
  // vibration is active-low: on = 0. Two pulses: on, off, on, off.
  await waitUntil(
    () => standIn.setCalls().filter((c) => c.endsWith(' 21=1')).length === 2,
    'two pulses ending off',
  );
  await new Promise((r) => setTimeout(r, 150));
  const calls = standIn.setCalls();
  t.true(calls.includes('--mode=signal gpiochip0 20=1'));
  t.deepEqual(
    calls.filter((c) => c.includes(' 21=')).map((c) => c.slice(-1)),
    ['0', '1', '0', '1'],
  );
  t.is(indicators.state('vibration'), 'off');
  await indicators.close();
});
