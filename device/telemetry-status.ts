/**
 * What the recorder tells the station over MQTT: its status in the protocol's shape (integers and
 * strings only), and which journal entries are worth telling now as events.
 */
import type { JournalEntry } from '../protocol/journal-entry.ts';
import type { Profile } from '../protocol/schemas/profile.ts';
import type { DeviceEvent } from '../protocol/schemas/event.ts';
import type { Status } from '../protocol/schemas/status.ts';
import type { RecorderStatus } from './recorder.ts';
import { EVIDENCE_DAMAGED_KIND, RECEIPT_REFUSED_KIND } from './uploader.ts';

/** Journal kinds a device manager should hear about at once (the journal stays the evidence). */
export const EVENT_KINDS: Record<string, 'info' | 'warning'> = {
  'record-start': 'info',
  'record-stop': 'info',
  'event-end': 'info',
  mark: 'info',
  photo: 'info',
  'record-refused': 'warning',
  'battery-low': 'warning',
  storage: 'warning',
  'capture-restart': 'warning',
  'seal-failed': 'warning',
  fault: 'warning',
  // issue 6: a gateway answered with a receipt the device would not act on
  [RECEIPT_REFUSED_KIND]: 'warning',
  // a local evidence file that no longer hashes to its entry
  [EVIDENCE_DAMAGED_KIND]: 'warning',
};

export function toStatus(s: RecorderStatus, profile: Profile, now: Date): Status {
  // Minutes of recording the free space holds at the profile's video bitrate (plus ~128 kbit/s audio).
  const bytesPerMinute = ((profile.capture.bitrateKbps + (profile.capture.audio ? 128 : 0)) * 1000 * 60) / 8;
  const free = s.storage.freeBytes ?? 0;
  const fix = s.gnss && s.gnss.mode >= 2 && s.gnss.lat !== null && s.gnss.lon !== null ? s.gnss : null;
  return {
    device: s.device,
    time: now.toISOString(),
    state: s.docked && s.state === 'standby' ? 'docked' : s.state,
    battery: {
      percent: Math.max(0, Math.min(100, Math.round(s.battery?.capacity ?? 0))),
      charging: s.battery?.status === 'Charging' || (s.battery?.externalPower ?? false),
      minutesLeft: Math.max(0, Math.floor(s.battery?.minutesLeft ?? 0)),
    },
    storage: {
      freeBytes: Math.max(0, Math.floor(free)),
      totalBytes: Math.max(0, Math.floor(s.storage.totalBytes ?? 0)),
      minutesLeft: Math.max(0, Math.floor(free / bytesPerMinute)),
    },
    gnss: fix ? { fix: true, lat: fix.lat!.toFixed(7), lon: fix.lon!.toFixed(7) } : { fix: false },
    officer: s.officer,
    uploads: {
      pending: s.pendingUploads.count,
      ...(s.pendingUploads.oldestDeadline ? { oldestDeadline: s.pendingUploads.oldestDeadline } : {}),
    },
    clock: {
      source: s.clock.source === 'gnss' ? 'gnss' : 'rtc',
      offsetMs: Math.round(s.clock.offsetMs ?? 0),
    },
    profile: s.profile,
    firmware: s.firmware,
  };
}

export function toEvent(entry: JournalEntry): DeviceEvent | null {
  const level = EVENT_KINDS[entry.kind];
  if (!level) return null;
  return {
    device: entry.device,
    time: entry.time,
    seq: entry.seq,
    kind: entry.kind,
    level,
    body: entry.body,
  };
}
