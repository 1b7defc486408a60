// Battery drivers against a real directory tree shaped like /sys/class/power_supply/BAT0, and the
// simulated battery on an injected clock; plus the low-battery alarm (GA/T 947: ≥ 5 min left).
import test, { type ExecutionContext } from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Battery, BatteryReading } from '../../hardware/battery.ts';
import { lowBatteryAlarm } from '../../hardware/battery-estimate.ts';
import { SimBattery } from '../../hardware/battery-sim.ts';
import { SysfsBattery } from '../../hardware/battery-sysfs.ts';
import { tempDir } from '../helpers/temp.ts';

function powerSupply(t: ExecutionContext, attributes: Record<string, string>): string {
  const dir = join(tempDir(t), 'BAT0');
  mkdirSync(dir);
  // sysfs attributes end with a newline
  for (const [name, value] of Object.entries(attributes)) writeFileSync(join(dir, name), `${value}\n`);
  return dir;
}

const laptop = {
  type: 'Battery',
  status: 'Discharging',
  capacity: '57',
  voltage_now: '3850000',
  current_now: '780000',
  energy_now: '5700000',
  energy_full: '10000000',
  health: 'Good',
  temp: '312',
};

// Contract: both drivers read the same kind of values.
const contract: { name: string; make(t: ExecutionContext): Battery }[] = [
  { name: 'SysfsBattery', make: (t) => new SysfsBattery({ path: powerSupply(t, laptop) }) },
  { name: 'SimBattery', make: () => new SimBattery({ initialPercent: 57 }) },
];
for (const driver of contract) {
  test(`${driver.name}: a discharging battery reading is complete and consistent`, async (t) => {
    const r = await driver.make(t).read();
    t.is(r.capacity, 57);
    t.is(r.status, 'Discharging');
    t.false(r.externalPower);
    t.true(r.voltageV! > 3 && r.voltageV! < 4.5);
    t.true(r.powerW! > 0);
    t.true(r.minutesLeft! > 60 && r.minutesLeft! < 24 * 60);
    t.is(typeof r.tempC, 'number');
    t.is(r.problems, undefined);
  });
}

test('sysfs units: µV, µA, µWh and tenths of °C; minutes from energy at the larger of measured and recording draw', async (t) => {
  const r = await new SysfsBattery({ path: powerSupply(t, laptop), recordingDrawW: 2.5 }).read();
  t.is(r.voltageV, 3.85);
  t.is(Math.round(r.powerW! * 1000), 3003); // 0.78 A × 3.85 V
  t.is(r.tempC, 31.2);
  t.is(r.health, 'Good');
  // 5.7 Wh at 3.003 W = 113.9 min
  t.is(r.minutesLeft, 113);
  // idle: measured draw below the recording draw → the recording draw decides
  const idle = await new SysfsBattery({
    path: powerSupply(t, { ...laptop, current_now: '50000' }),
    recordingDrawW: 2.5,
  }).read();
  t.is(idle.minutesLeft, 136); // 5.7 Wh / 2.5 W
});

test('sysfs: power_now, negative current and charge_now are understood', async (t) => {
  const withPower = await new SysfsBattery({
    path: powerSupply(t, {
      status: 'Discharging',
      power_now: '-4000000',
      charge_now: '2000000',
      voltage_now: '4000000',
    }),
  }).read();
  t.is(withPower.powerW, 4);
  t.is(withPower.minutesLeft, 120); // 2 Ah × 4 V = 8 Wh at 4 W
  const fromCapacity = await new SysfsBattery({
    path: powerSupply(t, {
      status: 'Discharging',
      capacity: '50',
      charge_full: '2500000',
      voltage_now: '4000000',
    }),
  }).read();
  t.is(fromCapacity.minutesLeft, 120); // 50 % of 10 Wh at the 2.5 W recording draw
});

test('sysfs: missing attributes are null, not errors', async (t) => {
  const r = await new SysfsBattery({ path: powerSupply(t, { capacity: '80' }) }).read();
  t.deepEqual(r, {
    capacity: 80,
    status: 'Unknown',
    voltageV: null,
    powerW: null,
    health: null,
    tempC: null,
    minutesLeft: null,
    externalPower: false,
  });
});

test('sysfs: garbage values become null and are reported, never thrown', async (t) => {
  const r = await new SysfsBattery({
    path: powerSupply(t, {
      capacity: '1O0',
      status: 'Exploding',
      voltage_now: '\u0000\u00ff',
      current_now: '12.5',
      temp: 'hot',
      energy_now: '-5',
    }),
  }).read();
  t.like(r, {
    capacity: null,
    status: 'Unknown',
    voltageV: null,
    powerW: null,
    tempC: null,
    minutesLeft: null,
  });
  t.deepEqual(
    r.problems!.map((p) => p.split(':')[0]),
    ['capacity', 'status', 'voltage_now', 'current_now', 'energy_now', 'temp'],
  );
  const over = await new SysfsBattery({ path: powerSupply(t, { capacity: '140' }) }).read();
  t.is(over.capacity, null);
  t.is(over.problems!.length, 1);
});

test('sysfs: charging and full mean external power', async (t) => {
  for (const status of ['Charging', 'Full', 'Not charging']) {
    const r = await new SysfsBattery({ path: powerSupply(t, { ...laptop, status }) }).read();
    t.true(r.externalPower, status);
  }
});

test('sysfs: a missing directory is BATTERY_UNAVAILABLE naming the sim driver', async (t) => {
  const error = await t.throwsAsync(new SysfsBattery({ path: join(tempDir(t), 'nope') }).read());
  t.like(error, { code: 'BATTERY_UNAVAILABLE', context: { alternatives: ['sim'] } });
});

test('SimBattery drains while recording, more slowly idle, and charges on external power', async (t) => {
  let now = 0;
  const bat = new SimBattery({
    capacityWh: 10,
    recordingDrawW: 2.5,
    idleDrawW: 0.5,
    chargeW: 10,
    now: () => now,
  });
  t.like(await bat.read(), { capacity: 100, status: 'Discharging', minutesLeft: 240 });
  bat.setRecording(true);
  now += 3_600_000; // 1 h recording: 2.5 Wh gone
  t.like(await bat.read(), { capacity: 75, minutesLeft: 180, powerW: 2.5 });
  bat.setRecording(false);
  now += 3_600_000; // 1 h idle: 0.5 Wh
  t.like(await bat.read(), { capacity: 70, powerW: 0.5 });
  bat.setExternalPower(true);
  now += 900_000; // 15 min docked: (10 W - 0.5 W idle) × 0.25 h = +2.375 Wh
  const docked = await bat.read();
  t.like(docked, { capacity: 94, status: 'Charging', externalPower: true, powerW: -10 });
  now += 3_600_000;
  t.like(await bat.read(), { capacity: 100, status: 'Full' });
  bat.setExternalPower(false);
  bat.setCapacity(12);
  t.like(await bat.read(), { capacity: 12, minutesLeft: 28 });
  bat.setRecording(true);
  now += 10 * 3_600_000;
  t.like(await bat.read(), { capacity: 0, minutesLeft: 0 });
});

function reading(minutesLeft: number | null, externalPower = false): BatteryReading {
  return {
    capacity: 10,
    status: externalPower ? 'Charging' : 'Discharging',
    voltageV: 3.5,
    powerW: 2.5,
    health: null,
    tempC: null,
    minutesLeft,
    externalPower,
  };
}

test('low-battery alarm: from the estimate, at the threshold, so at least 5 minutes remain', (t) => {
  t.like(lowBatteryAlarm(reading(6)), { alarm: false, reason: 'ok' });
  t.like(lowBatteryAlarm(reading(5)), { alarm: true, reason: 'low', minutesLeft: 5 });
  t.like(lowBatteryAlarm(reading(0)), { alarm: true });
  t.like(lowBatteryAlarm(reading(2, true)), { alarm: false, reason: 'external-power' });
  t.like(lowBatteryAlarm(reading(null)), { alarm: false, reason: 'unknown' });
  t.like(lowBatteryAlarm(reading(20), { minMinutes: 30 }), { alarm: true });
  // The same percentage alarms or not depending on the draw: it is not a fixed percentage.
  t.like(lowBatteryAlarm({ ...reading(24), capacity: 10 }), { alarm: false });
  for (const bad of [4, 31, Number.NaN])
    t.throws(() => lowBatteryAlarm(reading(10), { minMinutes: bad }), { message: /HARDWARE_CONFIG_INVALID/ });
});

test('low-battery alarm on a simulated recording comes while five minutes of recording remain', async (t) => {
  let now = 0;
  const bat = new SimBattery({ capacityWh: 1, recordingDrawW: 2.5, now: () => now });
  bat.setRecording(true);
  let alarmAt: number | null = null;
  // Poll every 10 s as the status reporter would.
  for (; now < 3_600_000 && alarmAt === null; now += 10_000) {
    if (lowBatteryAlarm(await bat.read()).alarm) alarmAt = now;
  }
  t.not(alarmAt, null);
  // 1 Wh at 2.5 W lasts 24 min; the alarm comes at ~19 min, with ≥ 5 min of recording left.
  const endAt = (1 / 2.5) * 3_600_000;
  t.true(endAt - alarmAt! >= 5 * 60_000, `alarm ${(endAt - alarmAt!) / 60_000} min before empty`);
  t.true(endAt - alarmAt! < 6 * 60_000);
});
