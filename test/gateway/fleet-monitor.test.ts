import test from 'ava';
import { FleetMonitor } from '../../gateway/fleet-monitor.ts';
import { parseGatewayConfig } from '../../gateway/config.ts';
import { FleetSchema } from '../../protocol/schemas/fleet.ts';
import { Value } from '@sinclair/typebox/value';
import { makeStatus } from '../helpers/mqtt.ts';

const thresholds = parseGatewayConfig({
  format: 'recorder-gateway/1',
  unit: 'U',
  tls: { cert: 'c', key: 'k', ca: 'a', crl: 'r' },
}).fleet;
const T0 = Date.parse('2026-11-23T08:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

test('each alert is raised by its own condition, alerts sort first, and the snapshot fits its schema', (t) => {
  const m = new FleetMonitor('U', thresholds);
  m.onStatus('D-ok', makeStatus('D-ok', { time: iso(T0) }), T0);
  m.onStatus(
    'D-batt',
    makeStatus('D-batt', { time: iso(T0), battery: { percent: 19, charging: false, minutesLeft: 20 } }),
    T0,
  );
  m.onStatus(
    'D-charging',
    makeStatus('D-charging', { time: iso(T0), battery: { percent: 5, charging: true, minutesLeft: 10 } }),
    T0,
  );
  m.onStatus(
    'D-store',
    makeStatus('D-store', { time: iso(T0), storage: { freeBytes: 1, totalBytes: 100, minutesLeft: 59 } }),
    T0,
  );
  m.onStatus(
    'D-late',
    makeStatus('D-late', { time: iso(T0), uploads: { pending: 3, oldestDeadline: iso(T0 - 1) } }),
    T0,
  );
  m.onStatus(
    'D-due',
    makeStatus('D-due', { time: iso(T0), uploads: { pending: 3, oldestDeadline: iso(T0 + 3_600_000) } }),
    T0,
  );
  m.onStatus('D-clock', makeStatus('D-clock', { time: iso(T0 + 3001) }), T0);
  m.onStatus('D-clock-ok', makeStatus('D-clock-ok', { time: iso(T0 - 2999) }), T0);
  m.onStatus('D-gone', makeStatus('D-gone', { time: iso(T0) }), T0);
  m.onAvailability('D-gone', 'offline', T0);
  const fleet = m.snapshot(T0);
  t.true(Value.Check(FleetSchema, fleet));
  const alerts = Object.fromEntries(fleet.devices.map((d) => [d.device, d.alerts]));
  t.deepEqual(alerts, {
    'D-batt': ['battery-low'],
    'D-clock': ['clock-drift'],
    'D-gone': ['offline'],
    'D-late': ['upload-overdue'],
    'D-store': ['storage-low'],
    'D-charging': [],
    'D-clock-ok': [],
    'D-due': [],
    'D-ok': [],
  });
  t.deepEqual(
    fleet.devices.map((d) => d.device),
    ['D-batt', 'D-clock', 'D-gone', 'D-late', 'D-store', 'D-charging', 'D-clock-ok', 'D-due', 'D-ok'],
  );
  t.deepEqual(fleet.summary, { devices: 9, online: 8, withAlerts: 5 });
  t.is(fleet.devices.find((d) => d.device === 'D-clock')!.clockOffsetMs, 3001);
});

test('a silent device goes offline after offlineAfterMs; alert changes are reported once', (t) => {
  const m = new FleetMonitor('U', thresholds);
  m.onStatus('D1', makeStatus('D1', { time: iso(T0) }), T0);
  t.deepEqual(m.alertChanges(m.snapshot(T0)), []);
  const later = T0 + thresholds.offlineAfterMs + 1;
  t.deepEqual(m.alertChanges(m.snapshot(later)), [{ device: 'D1', alert: 'offline', active: true }]);
  t.deepEqual(m.alertChanges(m.snapshot(later)), []);
  m.onStatus('D1', makeStatus('D1', { time: iso(later) }), later);
  t.deepEqual(m.alertChanges(m.snapshot(later)), [{ device: 'D1', alert: 'offline', active: false }]);
  m.onDisconnect('D1', later + 5);
  t.deepEqual(m.snapshot(later + 5).devices[0]!.alerts, ['offline']);
});

test('a device that appears later takes its place in the order; one alert of several clears alone', (t) => {
  const m = new FleetMonitor('U', thresholds);
  m.onStatus('D2', makeStatus('D2', { time: iso(T0) }), T0);
  m.onStatus('D1', makeStatus('D1', { time: iso(T0) }), T0);
  t.deepEqual(
    m.snapshot(T0).devices.map((d) => d.device),
    ['D1', 'D2'],
  );
  const low = {
    time: iso(T0),
    battery: { percent: 5, charging: false, minutesLeft: 5 },
    storage: { freeBytes: 1, totalBytes: 100, minutesLeft: 1 },
  };
  m.onStatus('D0', makeStatus('D0', low), T0);
  m.onStatus('D3', makeStatus('D3', low), T0);
  const fleet = m.snapshot(T0);
  t.deepEqual(
    fleet.devices.map((d) => d.device),
    ['D0', 'D3', 'D1', 'D2'],
  );
  t.deepEqual(fleet.summary, { devices: 4, online: 4, withAlerts: 2 });
  t.deepEqual(m.alertChanges(fleet), [
    { device: 'D0', alert: 'battery-low', active: true },
    { device: 'D0', alert: 'storage-low', active: true },
    { device: 'D3', alert: 'battery-low', active: true },
    { device: 'D3', alert: 'storage-low', active: true },
  ]);
  m.onStatus(
    'D0',
    makeStatus('D0', { ...low, battery: { percent: 90, charging: true, minutesLeft: 500 } }),
    T0 + 1,
  );
  const next = m.snapshot(T0 + 1);
  t.deepEqual(next.devices[0]!.alerts, ['storage-low']);
  t.deepEqual(m.alertChanges(next), [{ device: 'D0', alert: 'battery-low', active: false }]);
  t.deepEqual(m.alertChanges(m.snapshot(T0 + 2)), []);
});

test('upload alerts mark a device of the fleet only: a relayed device (at a center) does not join it', (t) => {
  const m = new FleetMonitor('U', thresholds);
  m.onStatus('D-here', makeStatus('D-here', { time: iso(T0) }), T0);
  m.onUploadAlert('D-here', 'upload-refused', T0);
  m.onUploadAlert('D-relayed', 'upload-refused', T0);
  m.onUploadStored('D-relayed-too');
  const fleet = m.snapshot(T0 + 1_000);
  t.deepEqual(
    fleet.devices.map((d) => [d.device, d.alerts]),
    [['D-here', ['upload-refused']]],
  );
  m.onUploadStored('D-here');
  t.deepEqual(m.snapshot(T0 + 2_000).devices[0]!.alerts, []);
});

test('evidence-damaged holds a day, whatever the device stores meanwhile; the other upload alerts clear on a store', (t) => {
  const m = new FleetMonitor('U', thresholds);
  const HOUR = 3_600_000;
  m.onStatus('D0', makeStatus('D0', { time: iso(T0) }), T0);
  m.onUploadAlert('D0', 'evidence-damaged', T0);
  m.onUploadAlert('D0', 'upload-refused', T0);
  m.onUploadStored('D0');
  const alertsAt = (at: number) => {
    m.onStatus('D0', makeStatus('D0', { time: iso(at) }), at); // online throughout
    return m.snapshot(at).devices[0]!.alerts;
  };
  t.deepEqual(alertsAt(T0 + 1_000), ['evidence-damaged']);
  t.deepEqual(alertsAt(T0 + 23 * HOUR), ['evidence-damaged']);
  t.deepEqual(alertsAt(T0 + 25 * HOUR), []);
  t.true(Value.Check(FleetSchema, m.snapshot(T0 + 1_000)));
});
