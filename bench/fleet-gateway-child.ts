/**
 * Runs the gateway alone in this process so the fleet bench can measure its RSS and CPU apart.
 * `node --import=tsx bench/fleet-gateway-child.ts CONFIG [PROFILE]`: with PROFILE, the first SIGUSR2
 * starts V8's CPU profiler and the second writes PROFILE (a .cpuprofile for Chrome DevTools), so the
 * profile covers exactly the measured window (bench/fleet.ts `--cpu-prof`).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadGatewayConfig } from '../gateway/config.ts';
import { startGateway } from '../gateway/gateway.ts';

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
process.stdout.write(`ready ${handle.address.port}\n`);
process.on('SIGTERM', () => void handle.close().then(() => process.exit(0)));
