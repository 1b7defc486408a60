// The gpiod driver as far as a machine without a GPIO chip allows: the real driver code against
// stand-in gpiomon/gpioset executables that speak the tools' formats.
import test from 'ava';
import { GpiodDriver, parseGpiomonLine, type ToolExit } from '../../hardware/gpio-gpiod.ts';
import type { GpioEdge } from '../../hardware/gpio.ts';
import { gpiodStandIn } from '../helpers/gpiod-standin.ts';
import { tempDir } from '../helpers/temp.ts';
import { waitFor } from '../helpers/wait.ts';

test('gpiomon lines: our -F format and libgpiod 1.x default format; anything else is null', (t) => {
  t.deepEqual(parseGpiomonLine('17 1 1700000000 5000000'), {
    line: 17,
    level: 1,
    seconds: 1700000000,
    nanos: 5000000,
  });
  t.deepEqual(parseGpiomonLine('event:  RISING EDGE offset: 4 timestamp: [    1234.567890123]'), {
    line: 4,
    level: 1,
    seconds: 1234,
    nanos: 567890123,
  });
  t.deepEqual(parseGpiomonLine('event: FALLING EDGE offset: 23 timestamp: [1.5]'), {
    line: 23,
    level: 0,
    seconds: 1,
    nanos: 500000000,
  });
  for (const bad of [
    '',
    '17 2 1 1',
    'gpiomon: error waiting for events',
    '17 1 x 1',
    'event: RISING offset: 1',
  ])
    t.is(parseGpiomonLine(bad), null, bad);
});

test('gpiomon runs line-buffered on the profile chip and lines; edges come with system-clock times', async (t) => {
  const standIn = gpiodStandIn(tempDir(t));
  const driver = new GpiodDriver({ chip: 'gpiochip3', gpiomon: standIn.gpiomon, gpioset: standIn.gpioset });
  t.teardown(() => driver.close());
  const edges: GpioEdge[] = [];
  const unparsed: string[] = [];
  driver.on('unparsed', (l: string) => unparsed.push(l));
  await driver.watch([5, 6], (e) => edges.push(e));
  await waitFor(() => standIn.monRuns() === 1, 10_000, 'gpiomon');
  t.deepEqual(standIn.monArgs(), ['-b -F %o %e %s %n gpiochip3 5 6']);
  const now = Date.now();
  standIn.edge(5, 1, now);
  standIn.edge(6, 0, now + 250.5);
  await waitFor(() => edges.length === 2, 10_000, 'two edges');
  t.is(edges[0]!.line, 5);
  t.is(edges[0]!.level, 1);
  // Durations come from the event timestamps, not from when the lines were read.
  t.true(Math.abs(edges[1]!.at - edges[0]!.at - 250.5) < 0.01);
  t.true(Math.abs(edges[0]!.at - now) < 2000);
  t.deepEqual(unparsed, []);
});

test('supervision: gpiomon dies, the driver reports it and restarts it with backoff; edges resume', async (t) => {
  const standIn = gpiodStandIn(tempDir(t));
  const driver = new GpiodDriver({ gpiomon: standIn.gpiomon, gpioset: standIn.gpioset, restartMinMs: 100 });
  t.teardown(() => driver.close());
  const edges: GpioEdge[] = [];
  const exits: ToolExit[] = [];
  driver.on('tool-exit', (e: ToolExit) => exits.push(e));
  await driver.watch([17], (e) => edges.push(e));
  await waitFor(() => standIn.monRuns() === 1, 10_000, 'gpiomon');
  standIn.edge(17, 1, Date.now());
  await waitFor(() => edges.length === 1, 10_000, 'the first edge');

  process.kill(standIn.monPid(), 'SIGKILL');
  await waitFor(() => exits.length === 1, 10_000, 'the exit report');
  t.like(exits[0], { tool: 'gpiomon', signal: 'SIGKILL', restartInMs: 100 });
  await waitFor(() => standIn.monRuns() === 2, 10_000, 'the restart');
  standIn.edge(17, 0, Date.now());
  await waitFor(() => edges.length === 2, 10_000, 'an edge after the restart');
  t.is(edges[1]!.level, 0);

  // A second crash backs off longer.
  process.kill(standIn.monPid(), 'SIGKILL');
  await waitFor(() => exits.length === 2, 10_000, 'the second exit');
  t.is(exits[1]!.restartInMs, 200);
});

test('outputs: one gpioset --mode=signal per level change; the old holder ends first; a dead holder is restarted', async (t) => {
  const standIn = gpiodStandIn(tempDir(t));
  const driver = new GpiodDriver({
    chip: 'gpiochip0',
    gpiomon: standIn.gpiomon,
    gpioset: standIn.gpioset,
    restartMinMs: 50,
  });
  t.teardown(() => driver.close());
  const exits: ToolExit[] = [];
  driver.on('tool-exit', (e: ToolExit) => exits.push(e));
  // Wait for each stand-in to log itself before superseding it (a real gpioset needs no such wait).
  await driver.write(22, 1);
  await waitFor(() => standIn.setCalls().length === 1, 10_000, 'the first gpioset');
  await driver.write(22, 1); // unchanged: no new process
  await driver.write(22, 0);
  await waitFor(() => standIn.setCalls().length === 2, 10_000, 'the second gpioset');
  await driver.write(23, 1);
  await waitFor(() => standIn.setCalls().length === 3, 10_000, 'three gpioset starts');
  t.deepEqual(standIn.setCalls(), [
    '--mode=signal gpiochip0 22=1',
    '--mode=signal gpiochip0 22=0',
    '--mode=signal gpiochip0 23=1',
  ]);
  // The first holder of line 22 was ended by us: that is not reported as a crash.
  t.deepEqual(exits, []);
  await waitFor(() => standIn.setPids().length === 3, 10_000, 'the third pid');
  process.kill(standIn.setPids()[2]!, 'SIGKILL');
  await waitFor(() => standIn.setCalls().length === 4, 10_000, 'the restarted holder');
  t.is(standIn.setCalls()[3], '--mode=signal gpiochip0 23=1');
  t.like(exits[0], { tool: 'gpioset', signal: 'SIGKILL' });
  await driver.close();
  await new Promise((r) => setTimeout(r, 150));
  t.is(standIn.setCalls().length, 4, 'nothing restarts after close');
});

test('a missing gpiomon is GPIO_UNAVAILABLE naming the package and the other drivers', async (t) => {
  const driver = new GpiodDriver({ gpiomon: '/nonexistent/gpiomon' });
  const error = await t.throwsAsync(driver.watch([1], () => {}));
  t.like(error, { code: 'GPIO_UNAVAILABLE', context: { alternatives: ['onoff', 'sim'] } });
  t.regex(error!.message, /gpiod.*onoff.*sim/);
});
