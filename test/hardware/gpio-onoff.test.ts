import test from 'ava';
import { createRequire } from 'node:module';
import { OnoffDriver } from '../../hardware/gpio-onoff.ts';

const { Gpio } = createRequire(import.meta.url)('onoff') as { Gpio: { accessible: boolean } };

test('onoff: without sysfs GPIO a clear GPIO_UNAVAILABLE naming gpiod and sim; with it, a driver', async (t) => {
  if (Gpio.accessible) {
    const driver = await OnoffDriver.create();
    t.is(driver.name, 'onoff');
    await driver.close();
    return;
  }
  const error = await t.throwsAsync(OnoffDriver.create());
  t.like(error, { code: 'GPIO_UNAVAILABLE', context: { driver: 'onoff', alternatives: ['gpiod', 'sim'] } });
  t.regex(error!.message, /\/sys\/class\/gpio.*"gpiod".*"sim".*\(GPIO_UNAVAILABLE\)$/);
});
