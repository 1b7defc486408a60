import type { Command } from 'commander';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { RecorderError } from '../../protocol/errors.ts';
import type { GatewayStatus } from '../../protocol/schemas/fleet.ts';
import { decodePayload, gatewayTopic } from '../../protocol/topics.ts';
import { renderFleetTable } from '../fleet-table.ts';
import { EXIT_ERROR, EXIT_OK } from '../output.ts';

type Run = (action: () => Promise<number>) => Promise<void>;

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    throw new RecorderError('FILE_NOT_FOUND', `cannot read ${what} ${path}`, { path });
  }
}

/** O (unit) and CN (id) of our own certificate: the gateway's ACL uses the same. */
function subjectOf(certPem: Buffer): { unit: string; id: string } {
  const fields = Object.fromEntries(
    new X509Certificate(certPem).subject.split('\n').map((l) => l.split('=', 2) as [string, string]),
  );
  if (!fields.O || !fields.CN)
    throw new RecorderError('CLI_USAGE', 'the certificate names no unit (O=) and id (CN=)');
  return { unit: fields.O, id: fields.CN };
}

export function registerFleet(program: Command, run: Run): void {
  const fleet = program.command('fleet').description("the unit's recorders as the gateway sees them");
  fleet
    .command('watch')
    .description('show the live fleet table (alerts first), or one JSON snapshot per line with --json')
    .requiredOption('--url <url>', 'the gateway, mqtts://HOST:PORT')
    .requiredOption('--cert <pem>', 'a manager (or technician) certificate')
    .requiredOption('--key <pem>', 'its private key')
    .requiredOption('--ca <pem>', 'the unit CA certificate')
    .option('--json', 'one snapshot per line, as published on rec/v1/{unit}/gateway/fleet')
    .option('--once', 'exit after the first snapshot')
    .action((opts: { url: string; cert: string; key: string; ca: string; json?: boolean; once?: boolean }) =>
      run(async () => {
        const cert = readPem(opts.cert, 'the certificate');
        const { unit, id } = subjectOf(cert);
        const client = mqtt.connect(opts.url, {
          protocolVersion: 4,
          clientId: `${id}:fleet-watch-${process.pid}`,
          cert,
          key: readPem(opts.key, 'the private key'),
          ca: readPem(opts.ca, 'the CA certificate'),
          reconnectPeriod: 5000,
        });
        const tty = process.stdout.isTTY && !opts.json;
        return new Promise<number>((resolve) => {
          const stop = () => void client.endAsync().then(() => resolve(EXIT_OK));
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          let connected = false;
          client.on('error', (error) => {
            process.stderr.write(`recorder: ${error.message}\n`);
            // Never connected: a refused certificate or a wrong address will not fix itself.
            if (!connected) void client.endAsync(true).then(() => resolve(EXIT_ERROR));
          });
          client.on('close', () => {
            if (!connected) void client.endAsync(true).then(() => resolve(EXIT_ERROR));
          });
          // The gateway's status first: its retained copy then arrives before the fleet's.
          let status: GatewayStatus | undefined;
          const statusTopic = gatewayTopic('gatewayStatus', unit);
          client.on('connect', () => {
            connected = true;
            void client
              .subscribeAsync(statusTopic, { qos: 0 })
              .then(() => client.subscribeAsync(gatewayTopic('fleet', unit), { qos: 0 }));
          });
          client.on('message', (topic, payload) => {
            if (topic === statusTopic) {
              const decoded = decodePayload('gatewayStatus', payload);
              if (decoded.ok) status = decoded.value;
              return;
            }
            const decoded = decodePayload('fleet', payload);
            if (!decoded.ok) return;
            if (opts.json) process.stdout.write(`${JSON.stringify(decoded.value)}\n`);
            else
              process.stdout.write(
                `${tty ? '\x1b[2J\x1b[H' : ''}${renderFleetTable(decoded.value, Date.now(), status)}`,
              );
            if (opts.once) stop();
          });
        });
      }),
    );
}
