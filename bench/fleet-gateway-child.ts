/**
 * Runs the gateway alone in this process so the fleet bench can measure its RSS and CPU apart.
 * `node --import=tsx bench/fleet-gateway-child.ts CONFIG [PROFILE]`: with PROFILE, the first SIGUSR2
 * starts V8's CPU profiler and the second writes PROFILE (a .cpuprofile for Chrome DevTools), so the
 * profile covers exactly the measured window (bench/fleet.ts `FLEET_CPU_PROF`).
 *
 * IPC (when forked with an IPC channel): ← `window` starts the health monitor (bench/fleet-health.ts)
 * and the ingress stamps; ← `stop` → `stopped` with both. The ingress stamp of a status is
 * `Date.now()` when aedes has routed it (its `publish` event: after authorizePublish validated it,
 * the retained copy was stored and it was handed to every subscriber's connection) minus the
 * device's `time` in the payload: the device → gateway leg of the manager's end-to-end latency.
 * Reading the stamp costs an indexOf and a Date.parse per status; nothing in the payload changes.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadGatewayConfig } from '../gateway/config.ts';
import { startGateway } from '../gateway/gateway.ts';
import { HealthMonitor } from './fleet-health.ts';
import type { GatewayReply, GatewayRequest } from './fleet.ts';

const [configPath, profilePath] = process.argv.slice(2);
const handle = await startGateway(loadGatewayConfig(configPath!), {
  logSink: (r) => {
    if (r.level === 'error') process.stderr.write(`${JSON.stringify(r)}\n`);
  },
});
if (profilePath) {
  const session = new Session();
  session.connect();
  let profiling = false;
  process.on('SIGUSR2', () => {
    profiling = !profiling;
    void (async () => {
      if (profiling) {
        await session.post('Profiler.enable');
        await session.post('Profiler.start');
      } else {
        const { profile } = await session.post('Profiler.stop');
        writeFileSync(profilePath, JSON.stringify(profile));
        process.stdout.write(`profile written\n`);
      }
    })();
  });
}

const health = new HealthMonitor();
const ingress: number[] = [];
let window = { startAt: Infinity, endAt: -Infinity };
handle.broker.aedes.on('publish', (packet, client) => {
  if (!client || !packet.topic.endsWith('/status')) return;
  const routed = Date.now();
  const payload = packet.payload as Buffer;
  const at = payload.indexOf('"time":"');
  if (at < 0) return;
  const sentAt = Date.parse(payload.toString('latin1', at + 8, at + 8 + 24));
  if (sentAt >= window.startAt && sentAt < window.endAt) ingress.push(routed - sentAt);
});
process.on('message', (m: GatewayRequest) => {
  if (m.type === 'window') {
    window = { startAt: m.startAt, endAt: m.endAt };
    setTimeout(() => health.start(), Math.max(0, m.startAt - Date.now()));
  } else if (m.type === 'stop') {
    process.send!({ type: 'stopped', health: health.stop(), ingress } satisfies GatewayReply);
  }
});
process.stdout.write(`ready ${handle.address.port}\n`);
process.on('SIGTERM', () => void handle.close().then(() => process.exit(0)));
