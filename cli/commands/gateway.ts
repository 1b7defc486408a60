import type { Command } from 'commander';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { caPaths, crlRevocations, issueCertificate, loadCa, writeIssued } from '../../gateway/ca.ts';
import { loadGatewayConfig, parseGatewayConfig } from '../../gateway/config.ts';
import { loadOrCreateSigningKey } from '../../device/keys.ts';
import { startGateway } from '../../gateway/gateway.ts';
import { asyncApiDocument } from '../../protocol/asyncapi.ts';
import { RecorderError } from '../../protocol/errors.ts';
import { EXIT_OK } from '../output.ts';

type Run = (action: () => Promise<number>) => Promise<void>;

export function parseListen(text: string): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || !match[1] || port > 65535)
    throw new RecorderError('CLI_USAGE', `--listen must be HOST:PORT, got ${text}`);
  return { host: match[1], port };
}

interface GatewayInitOptions {
  ca: string;
  listen: string;
  id: string;
  out: string;
  role: string;
  centerKey?: string;
  upstream?: string;
  upstreamCa?: string;
  upstreamReceiptKey?: string;
  purgeAfterDays: string;
  admitCa: string[];
}

/**
 * `--admit-ca DIR` of a center: another unit whose stations relay here. DIR holds that unit's
 * ca.cert.pem and crl.pem, as `recorder ca init` and `recorder ca revoke` write them (its private key
 * is not needed); the unit is the CA certificate's O.
 */
function admittedUnit(dir: string): { unit: string; ca: string; crl: string } {
  const paths = caPaths(resolve(dir));
  let unit: string | undefined;
  try {
    unit = /^O=(.+)$/m.exec(new X509Certificate(readFileSync(paths.cert)).subject)?.[1];
  } catch (error) {
    throw new RecorderError(
      'CA_MISSING',
      `--admit-ca ${dir}: cannot read ${paths.cert}: ${(error as Error).message}`,
    );
  }
  if (!unit) throw new RecorderError('CA_MISSING', `--admit-ca ${dir}: ${paths.cert} names no unit (O)`);
  let crls: number;
  try {
    crls = crlRevocations(readFileSync(paths.crl, 'utf8')).length;
  } catch (error) {
    throw new RecorderError(
      'CA_MISSING',
      `--admit-ca ${dir}: cannot read ${paths.crl}: ${(error as Error).message}`,
    );
  }
  if (crls === 0) throw new RecorderError('CA_MISSING', `--admit-ca ${dir}: ${paths.crl} holds no CRL`);
  return { unit, ca: paths.cert, crl: paths.crl };
}

/** The evidence and upstream sections `gateway init` writes for its role (issue 6 item 4). */
function gatewayRoleSections(opts: GatewayInitOptions): {
  evidence: { role: 'station' | 'center'; centerKey?: string };
  upstream?: { url: string; ca?: string; receiptKey: string; purgeAfterDays: number };
} {
  const usage = (message: string) => new RecorderError('CLI_USAGE', message);
  if (opts.role !== 'station' && opts.role !== 'center')
    throw usage(`--role must be station or center, got ${opts.role}`);
  if (opts.role === 'center') {
    if (!opts.centerKey)
      throw usage('a center gateway needs --center-key: it decrypts each segment at ingest to check it');
    if (opts.upstream) throw usage('--upstream is for a station: the center is the end of the relay');
    return { evidence: { role: 'center', centerKey: resolve(opts.centerKey) } };
  }
  if (opts.centerKey)
    throw usage('--center-key is for the center role only: a station never decrypts evidence');
  if (opts.admitCa.length)
    throw usage("--admit-ca is for the center role only: a station admits its own unit's clients");
  if (!opts.upstream) {
    if (opts.upstreamCa || opts.upstreamReceiptKey)
      throw usage('--upstream-ca and --upstream-receipt-key need --upstream');
    return { evidence: { role: 'station' } };
  }
  if (!opts.upstreamReceiptKey)
    throw usage("--upstream needs --upstream-receipt-key: the center's receipts are checked against it");
  const days = Number(opts.purgeAfterDays);
  if (!Number.isInteger(days) || days < 0)
    throw usage(`--purge-after-days must be a whole number of days, got ${opts.purgeAfterDays}`);
  return {
    evidence: { role: 'station' },
    upstream: {
      url: opts.upstream,
      ...(opts.upstreamCa ? { ca: resolve(opts.upstreamCa) } : {}),
      receiptKey: resolve(opts.upstreamReceiptKey),
      purgeAfterDays: days,
    },
  };
}

export function registerGateway(program: Command, run: Run): void {
  const gateway = program
    .command('gateway')
    .description('the station gateway: MQTT broker with mutual TLS and fleet monitor');
  gateway
    .command('init')
    .description('issue the gateway certificate from the unit CA and write a working configuration')
    .requiredOption('--ca <dir>', 'the unit CA directory (recorder ca init)')
    .option('--listen <host:port>', 'address to listen on (R14: the VPN address)', '127.0.0.1:8883')
    .option('--id <id>', 'the station id (CN of its certificate)', 'station')
    .requiredOption('--out <file>', 'the configuration file; the key and certificate go next to it')
    .option(
      '--role <role>',
      "station (a unit's collection station) or center (the provincial center)",
      'station',
    )
    .option(
      '--center-key <pem>',
      'center role: the RSA private key that decrypts each segment at ingest (recorder keys center)',
    )
    .option(
      '--upstream <url>',
      "station role: the center's gateway, mqtts://HOST:PORT; receipted evidence is relayed there with this station's own certificate",
    )
    .option('--upstream-ca <pem>', "the CA certificate of the center's gateway (default: this unit's CA)")
    .option('--upstream-receipt-key <pem>', "the center's receipt-signing public key (its receipt.pub.pem)")
    .option(
      '--purge-after-days <n>',
      'days a relayed item stays at the station after the center receipted it; 0 keeps it for ever',
      '30',
    )
    .option(
      '--admit-ca <dir>',
      "center role: another unit whose stations relay here: a directory with that unit's ca.cert.pem and crl.pem (repeatable)",
      (dir: string, dirs: string[]) => [...dirs, dir],
      [] as string[],
    )
    .action((opts: GatewayInitOptions) =>
      run(async () => {
        const listen = parseListen(opts.listen);
        const roles = gatewayRoleSections(opts);
        const caDir = resolve(opts.ca);
        const { unit } = loadCa(caDir);
        const units = opts.admitCa.map(admittedUnit);
        const any = listen.host === '0.0.0.0' || listen.host === '::';
        const ips = ['127.0.0.1', '::1', ...(isIP(listen.host) && !any ? [listen.host] : [])];
        const dns = ['localhost', ...(!isIP(listen.host) ? [listen.host] : [])];
        const configFor = (paths: { cert: string; key: string }) =>
          parseGatewayConfig({
            format: 'recorder-gateway/1',
            unit,
            listen,
            tls: { cert: paths.cert, key: paths.key, ca: caPaths(caDir).cert, crl: caPaths(caDir).crl },
            evidence: roles.evidence,
            ...(units.length ? { units } : {}),
            ...(roles.upstream
              ? {
                  upstream: {
                    ...roles.upstream,
                    cert: paths.cert,
                    key: paths.key,
                    ca: roles.upstream.ca ?? caPaths(caDir).cert,
                  },
                }
              : {}),
          });
        const out = resolve(opts.out);
        // Checked before the CA issues anything: a refused configuration leaves no certificate behind.
        const planned = join(dirname(out), `gateway-${opts.id}`);
        configFor({ cert: `${planned}.cert.pem`, key: `${planned}.key.pem` });
        const issued = issueCertificate(caDir, {
          role: 'gateway',
          id: opts.id,
          ipAddresses: ips,
          dnsNames: dns,
        });
        const paths = writeIssued(dirname(out), 'gateway', opts.id, issued);
        const config = configFor({ cert: paths.cert, key: paths.key! });
        writeFileSync(out, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644 });
        // Issue 6: the receipt-signing key. Devices pin its public half, so an existing pair is kept.
        const receiptPub = resolve(dirname(out), 'receipt.pub.pem');
        const receipt = loadOrCreateSigningKey(resolve(dirname(out), config.evidence.receiptKey), receiptPub);
        process.stdout.write(
          `gateway configuration for unit ${unit} written to ${out}\n` +
            `receipt-signing key ${receipt.created ? 'created' : 'kept'}; devices pin its public half: ` +
            `recorder profile init ... --receipt-key ${receiptPub}\n` +
            `  (fingerprint ${receipt.fingerprint})\n` +
            (roles.evidence.role === 'center'
              ? `stations relay here with: recorder gateway init ... --upstream mqtts://${opts.listen} --upstream-receipt-key ${receiptPub}\n`
              : '') +
            (units.length
              ? `admits the stations of units ${[unit, ...units.map((u) => u.unit)].join(', ')}\n`
              : '') +
            (roles.upstream ? `relays receipted evidence to ${roles.upstream.url}\n` : '') +
            `run it: recorder gateway run --config ${out}\n`,
        );
        return EXIT_OK;
      }),
    );
  gateway
    .command('run')
    .description('run the gateway until SIGINT or SIGTERM; logs are JSON lines on stdout')
    .requiredOption('--config <file>', 'the configuration (recorder gateway init)')
    .action((opts: { config: string }) =>
      run(async () => {
        // Listening for the stop before the gateway starts: a SIGTERM that came between its
        // `gateway listening` record and the handlers killed it mid-start (caught by a test).
        const stop = new Promise<void>((done) => {
          // `on`, not `once`: a terminal's Ctrl-C reaches both this process and bin/recorder.js,
          // which passes it on; the second one must not kill the gateway while it closes.
          process.on('SIGINT', done);
          process.on('SIGTERM', done);
          // Started by bin/recorder.js (gateway/heap.ts): stop when it goes, however it went.
          process.channel?.unref();
          process.once('disconnect', done);
        });
        const handle = await startGateway(loadGatewayConfig(resolve(opts.config)));
        await stop;
        await handle.close();
        return EXIT_OK;
      }),
    );
  gateway
    .command('asyncapi')
    .description('print the AsyncAPI 3.0 document of the MQTT API, generated from the protocol schemas')
    .action(() =>
      run(async () => {
        process.stdout.write(`${JSON.stringify(asyncApiDocument(), null, 2)}\n`);
        return EXIT_OK;
      }),
    );
}
