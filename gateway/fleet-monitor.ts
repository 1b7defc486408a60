/**
 * The fleet monitor (issue 5 item 4; R5 overdue uploads, R16 battery and storage): keeps the last
 * status of every device and turns it into one snapshot with alerts. No I/O and no timers: the
 * gateway feeds it messages with the time they arrived and asks for snapshots.
 */
import type { Availability } from '../protocol/schemas/availability.ts';
import type { AlertName, Fleet, FleetDevice } from '../protocol/schemas/fleet.ts';
import type { Status } from '../protocol/schemas/status.ts';
import type { FleetThresholds } from './config.ts';

interface DeviceRecord {
  device: string;
  online: boolean;
  lastSeen: number;
  status?: Status;
  /** device clock minus gateway clock when the status arrived */
  clockOffsetMs?: number;
  /** upload alerts (issue 6) and when they were last raised */
  uploadAlerts?: Map<UploadAlertName, number>;
}

export type UploadAlertName = Extract<AlertName, 'upload-refused' | 'station-storage' | 'evidence-damaged'>;

/** An upload alert holds until the device's next item is stored, or this long after the last one. */
export const UPLOAD_ALERT_HOLD_MS = 3_600_000;

/** evidence-damaged holds a day (a shift and its collection), whatever is stored meanwhile. */
export const DAMAGE_ALERT_HOLD_MS = 24 * 3_600_000;

export interface AlertChange {
  device: string;
  alert: AlertName;
  active: boolean;
}

export class FleetMonitor {
  private readonly devices = new Map<string, DeviceRecord>();
  /** device numbers sorted; undefined after a device is added */
  private order: string[] | undefined;
  /** each device's alerts at the previous alertChanges(), joined with `,` (alertsOf's order is fixed) */
  private lastAlerts = new Map<string, string>();

  constructor(
    readonly unit: string,
    private readonly thresholds: FleetThresholds,
  ) {}

  private record(device: string, at: number): DeviceRecord {
    let r = this.devices.get(device);
    if (!r) {
      r = { device, online: true, lastSeen: at };
      this.devices.set(device, r);
      this.order = undefined;
    }
    return r;
  }

  onStatus(device: string, status: Status, receivedAt: number): void {
    const r = this.record(device, receivedAt);
    r.status = status;
    r.lastSeen = receivedAt;
    r.online = true;
    // Measured, not declared: the status was written just now, so its time minus ours is the offset
    // (network delay on a station LAN is milliseconds against the 3 s threshold).
    r.clockOffsetMs = Date.parse(status.time) - receivedAt;
  }

  onAvailability(device: string, value: Availability, at: number): void {
    const r = this.record(device, at);
    r.online = value === 'online';
    r.lastSeen = at;
  }

  /** Any valid message from the device proves it is alive. */
  onSeen(device: string, at: number): void {
    const r = this.record(device, at);
    r.lastSeen = at;
  }

  /**
   * An upload of this device was refused or could not be stored. Only a device that talks to this
   * gateway itself is in its fleet: one whose items a station relays (at a center) is not, nor is
   * another unit's (its own station watches it).
   */
  onUploadAlert(device: string, alert: UploadAlertName, at: number): void {
    const r = this.devices.get(device);
    if (r) (r.uploadAlerts ??= new Map()).set(alert, at);
  }

  /** An item of this device was stored: its upload alerts clear (not evidence-damaged). */
  onUploadStored(device: string): void {
    const alerts = this.devices.get(device)?.uploadAlerts;
    alerts?.delete('upload-refused');
    alerts?.delete('station-storage');
  }

  onDisconnect(device: string, at: number): void {
    const r = this.devices.get(device);
    if (r) {
      r.online = false;
      r.lastSeen = Math.max(r.lastSeen, at);
    }
  }

  private alertsOf(r: DeviceRecord, now: number): AlertName[] {
    const t = this.thresholds;
    const alerts: AlertName[] = [];
    const s = r.status;
    if (!r.online || now - r.lastSeen > t.offlineAfterMs) alerts.push('offline');
    if (s && s.battery.percent < t.batteryLowPercent && !s.battery.charging) alerts.push('battery-low');
    if (s && s.storage.minutesLeft < t.storageLowMinutes) alerts.push('storage-low');
    if (s?.uploads.oldestDeadline && Date.parse(s.uploads.oldestDeadline) < now)
      alerts.push('upload-overdue');
    if (r.clockOffsetMs !== undefined && Math.abs(r.clockOffsetMs) > t.clockDriftMs)
      alerts.push('clock-drift');
    for (const [alert, since] of r.uploadAlerts ?? []) {
      const hold = alert === 'evidence-damaged' ? DAMAGE_ALERT_HOLD_MS : UPLOAD_ALERT_HOLD_MS;
      if (now - since < hold) alerts.push(alert);
    }
    return alerts;
  }

  snapshot(now: number): Fleet {
    // Device numbers in order, sorted again only when a device is added: with 5,000 devices the
    // snapshot runs on the broker's event loop every publishIntervalMs (bench/fleet.ts).
    this.order ??= [...this.devices.keys()].sort();
    // A device manager reads the top of the list: alerts first, then by device number.
    const withAlerts: FleetDevice[] = [];
    const quiet: FleetDevice[] = [];
    let online = 0;
    for (const id of this.order) {
      const d = this.entryOf(this.devices.get(id)!, now);
      (d.alerts.length > 0 ? withAlerts : quiet).push(d);
      if (d.online) online++;
    }
    const devices = withAlerts.concat(quiet);
    return {
      unit: this.unit,
      time: new Date(now).toISOString(),
      devices,
      summary: { devices: devices.length, online, withAlerts: withAlerts.length },
    };
  }

  private entryOf(r: DeviceRecord, now: number): FleetDevice {
    const s = r.status;
    const alerts = this.alertsOf(r, now);
    return {
      device: r.device,
      online: r.online && alerts[0] !== 'offline',
      lastSeen: new Date(r.lastSeen).toISOString(),
      state: s?.state ?? null,
      officer: s?.officer ?? null,
      batteryPercent: s?.battery.percent ?? null,
      charging: s?.battery.charging ?? null,
      batteryMinutesLeft: s?.battery.minutesLeft ?? null,
      recordingMinutesLeft: s?.storage.minutesLeft ?? null,
      storageFreePercent:
        s && s.storage.totalBytes > 0 ? Math.floor((s.storage.freeBytes * 100) / s.storage.totalBytes) : null,
      pendingUploads: s?.uploads.pending ?? null,
      oldestDeadline: s?.uploads.oldestDeadline ?? null,
      clockOffsetMs: r.clockOffsetMs ?? null,
      alerts,
    };
  }

  /** Alerts raised or cleared since the previous call, given a fresh snapshot. */
  alertChanges(fleet: Fleet): AlertChange[] {
    const changes: AlertChange[] = [];
    const next = new Map<string, string>();
    for (const d of fleet.devices) {
      const key = d.alerts.join(',');
      next.set(d.device, key);
      const beforeKey = this.lastAlerts.get(d.device) ?? '';
      if (key === beforeKey) continue; // the usual case: compare sets only when something changed
      const before = new Set(beforeKey === '' ? [] : beforeKey.split(','));
      const now = new Set(d.alerts);
      for (const a of now) if (!before.has(a)) changes.push({ device: d.device, alert: a, active: true });
      for (const a of before as Set<AlertName>)
        if (!now.has(a)) changes.push({ device: d.device, alert: a, active: false });
    }
    this.lastAlerts = next;
    return changes;
  }
}
