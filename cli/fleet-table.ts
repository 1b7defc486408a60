/**
 * The fleet view for a device manager with a few hundred recorders: one line per device, alerts
 * first (the snapshot is already sorted so), every figure with its unit, nothing to decode.
 */
import { CRL_WARN_MS, type Fleet, type FleetDevice, type GatewayStatus } from '../protocol/schemas/fleet.ts';

const DAY_MS = 86_400_000;

/**
 * Lines about the gateway itself worth a manager's eye: its relay to the center down or failing
 * with evidence waiting; a CRL that expires within 30 days (after it the gateway refuses every
 * client of that unit, these recorders included).
 */
function gatewayLines(status: GatewayStatus | undefined, now: number): string[] {
  const lines: string[] = [];
  // A station's relay to the center (R8) that is down or failing while evidence waits for it.
  const relay = status?.relay;
  if (relay && relay.pendingItems + relay.pendingJournals > 0 && (!relay.connected || relay.lastError)) {
    const mib = (relay.pendingBytes / 2 ** 20).toFixed(1);
    lines.push(
      `! gateway: relay to the center ${relay.connected ? 'failing' : 'not connected'}: ` +
        `${relay.pendingItems} item(s), ${mib} MiB` +
        (relay.oldestPending ? ` waiting since ${relay.oldestPending}` : '') +
        `, ${relay.pendingJournals} device journal(s) behind` +
        (relay.lastError ? ` (${relay.lastError})` : ''),
    );
  }
  for (const { unit, nextUpdate } of status?.crls ?? []) {
    const left = nextUpdate ? Date.parse(nextUpdate) - now : Infinity;
    if (left > CRL_WARN_MS) continue;
    lines.push(
      left > 0
        ? `! gateway: the CRL of unit ${unit} expires ${nextUpdate} (in ${Math.ceil(left / DAY_MS)} d): re-sign it with recorder ca crl`
        : `! gateway: the CRL of unit ${unit} EXPIRED ${nextUpdate}: the gateway refuses every client of that unit`,
    );
  }
  return lines;
}

function ago(ms: number): string {
  if (ms < 60_000) return `${Math.max(0, Math.round(ms / 1000))} s ago`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min ago`;
  return `${Math.round(ms / 3_600_000)} h ago`;
}

function due(deadline: string | null, now: number): string {
  if (!deadline) return '-';
  const ms = Date.parse(deadline) - now;
  if (ms < 0) return `OVERDUE ${ago(-ms).replace(' ago', '')}`;
  return ms < 3_600_000 ? `in ${Math.round(ms / 60_000)} min` : `in ${Math.round(ms / 3_600_000)} h`;
}

const columns: [string, (d: FleetDevice, now: number) => string][] = [
  ['', (d) => (d.alerts.length > 0 ? '!' : ' ')],
  ['DEVICE', (d) => d.device],
  ['ALERTS', (d) => d.alerts.join(',') || 'ok'],
  ['STATE', (d) => (d.online ? (d.state ?? '?') : 'OFFLINE')],
  ['BATTERY', (d) => (d.batteryPercent === null ? '-' : `${d.batteryPercent}%${d.charging ? '+' : ''}`)],
  ['BATT MIN', (d) => (d.batteryMinutesLeft === null ? '-' : `${d.batteryMinutesLeft}`)],
  ['REC MIN', (d) => (d.recordingMinutesLeft === null ? '-' : `${d.recordingMinutesLeft}`)],
  ['FREE', (d) => (d.storageFreePercent === null ? '-' : `${d.storageFreePercent}%`)],
  ['UPLOADS', (d) => (d.pendingUploads === null ? '-' : `${d.pendingUploads}`)],
  ['OLDEST DUE', (d, now) => due(d.oldestDeadline, now)],
  [
    'CLOCK',
    (d) =>
      d.clockOffsetMs === null
        ? '-'
        : `${d.clockOffsetMs >= 0 ? '+' : ''}${(d.clockOffsetMs / 1000).toFixed(1)} s`,
  ],
  ['OFFICER', (d) => d.officer ?? '-'],
  ['LAST SEEN', (d, now) => ago(now - Date.parse(d.lastSeen))],
];

/** `status`: the gateway's retained status, when it has come (its warnings go under the title). */
export function renderFleetTable(fleet: Fleet, now = Date.now(), status?: GatewayStatus): string {
  const rows = fleet.devices.map((d) => columns.map(([, f]) => f(d, now)));
  const header = columns.map(([h]) => h);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const s = fleet.summary;
  return [
    `unit ${fleet.unit}: ${s.devices} devices, ${s.online} online, ${s.withAlerts} with alerts — as of ${fleet.time}`,
    ...gatewayLines(status, now),
    line(header),
    ...rows.map(line),
    '',
  ].join('\n');
}
