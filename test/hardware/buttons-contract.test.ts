// One contract for every ButtonSource: the simulated buttons and the real GPIO buttons over the
// gpiod driver (with stand-in gpiomon, since this machine has no GPIO chip) classify the same
// gestures the same way. The onoff driver joins where sysfs GPIO exists (see gpio-onoff.test.ts).
import test, { type ExecutionContext } from 'ava';
import type { ButtonPress, ButtonSource } from '../../hardware/buttons.ts';
import { GpioButtons } from '../../hardware/gpio-buttons.ts';
import { GpiodDriver } from '../../hardware/gpio-gpiod.ts';
import { SimButtons } from '../../hardware/gpio-sim.ts';
import type { PressTiming } from '../../hardware/press-classifier.ts';
import { gpiodStandIn } from '../helpers/gpiod-standin.ts';
import { tempDir } from '../helpers/temp.ts';
import { waitFor } from '../helpers/wait.ts';

const timing: PressTiming = { debounceMs: 10, longMs: 500, doubleMs: 200 };
type Gesture = 'short' | 'long' | 'double';

interface Harness {
  source: ButtonSource;
  gesture(kind: Gesture): Promise<void>;
}

const drivers: { name: string; make(t: ExecutionContext): Harness }[] = [
  {
    name: 'SimButtons',
    make() {
      const source = new SimButtons({ timing });
      return {
        source,
        async gesture(kind) {
          source.press('record', { long: kind === 'long', double: kind === 'double' });
        },
      };
    },
  },
  {
    name: 'GpioButtons on gpiod (stand-in gpiomon, active-low pin)',
    make(t) {
      const standIn = gpiodStandIn(tempDir(t));
      const driver = new GpiodDriver({
        chip: 'gpiochip7',
        gpiomon: standIn.gpiomon,
        gpioset: standIn.gpioset,
      });
      const source = new GpioButtons({ driver, pins: { record: { line: 17, activeLow: true } }, timing });
      let cursor = 0;
      return {
        source,
        async gesture(kind) {
          await waitFor(() => standIn.monRuns() === 1, 10_000, 'gpiomon to start');
          // Edges are written with their own timestamps, like the kernel's; never going back.
          const t0 = Math.max(Date.now(), cursor + 50);
          const edges: [0 | 1, number][] =
            kind === 'short'
              ? [
                  [0, t0],
                  [1, t0 + 80],
                ]
              : kind === 'long'
                ? [
                    [0, t0],
                    [1, t0 + 700],
                  ]
                : [
                    [0, t0],
                    [1, t0 + 60],
                    [0, t0 + 160],
                    [1, t0 + 220],
                  ];
          // A bounce on the first press: must not turn a short press into a double.
          standIn.edge(17, 0, t0);
          standIn.edge(17, 1, t0 + 2);
          for (const [level, at] of edges) standIn.edge(17, level, at);
          cursor = edges.at(-1)![1];
        },
      };
    },
  },
];

for (const driver of drivers) {
  test(`${driver.name}: short, long and double presses, nothing after stop`, async (t) => {
    const { source, gesture } = driver.make(t);
    const presses: ButtonPress[] = [];
    source.on('press', (p: ButtonPress) => presses.push(p));
    t.teardown(() => source.stop());
    await source.start();
    for (const [i, kind] of (['short', 'long', 'double'] as const).entries()) {
      await gesture(kind);
      await waitFor(() => presses.length > i, 10_000, `the ${kind} press`);
      t.like(presses[i], { button: 'record', kind });
    }
    await new Promise((r) => setTimeout(r, timing.doubleMs + 100));
    t.is(presses.length, 3, JSON.stringify(presses));
    t.true(presses[0]!.at < presses[1]!.at && presses[1]!.at < presses[2]!.at);
    t.true(Math.abs(presses[0]!.at - Date.now()) < 10_000, 'press times are on the system clock');
    await source.stop();
    await gesture('short').catch(() => {});
    await new Promise((r) => setTimeout(r, timing.doubleMs + 100));
    t.is(presses.length, 3);
  });
}
