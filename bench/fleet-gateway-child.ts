/** Runs the gateway alone in this process so the fleet bench can measure its RSS and CPU apart. */
import { loadGatewayConfig } from '../gateway/config.ts';
import { startGateway } from '../gateway/gateway.ts';

const handle = await startGateway(loadGatewayConfig(process.argv[2]!), {
  logSink: (r) => {
    if (r.level === 'error') process.stderr.write(`${JSON.stringify(r)}\n`);
  },
});
process.stdout.write(`ready ${handle.address.port}\n`);
process.on('SIGTERM', () => void handle.close().then(() => process.exit(0)));
