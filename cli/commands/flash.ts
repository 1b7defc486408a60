/**
 * `recorder flash --port PATH [--baud N] --profile SIGNED.json [--ca DIR]` (issue 7, item 3).
 */
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { openSerialLink } from '../../hardware/serial-link.ts';
import { RecorderError } from '../../protocol/errors.ts';
import { flashDevice, type FlashProgress } from '../flash.ts';
import { EXIT_OK, printJson } from '../output.ts';
import { caDirFiles, unitCaDeviceIssuer, readCaFile } from '../unit-ca.ts';
import { readInput } from './profile-signing.ts';

export function registerFlash(program: Command, run: (action: () => Promise<number>) => Promise<void>): void {
  program
    .command('flash')
    .description(
      'provision a device on its service port: certificate from the unit CA, then the signed profile',
    )
    .requiredOption('--port <path>', 'serial port of the device (USB serial adapter, or a pty)')
    .option('--baud <n>', 'line rate', '115200')
    .requiredOption('--profile <file>', 'the signed profile (recorder profile sign)')
    .option('--ca <dir>', 'unit CA directory: issues the certificate of a factory-new device')
    .option('--frame-size <bytes>', 'largest frame payload', '4096')
    .option('--reboot', 'reboot the device into service afterwards')
    .option('--json', 'print the result as JSON')
    .action(
      (opts: {
        port: string;
        baud: string;
        profile: string;
        ca?: string;
        frameSize: string;
        json?: boolean;
        reboot?: boolean;
      }) =>
        run(async () => {
          const baud = Number(opts.baud);
          const frameSize = Number(opts.frameSize);
          if (!Number.isSafeInteger(baud) || baud <= 0)
            throw new RecorderError('CLI_USAGE', `bad --baud ${opts.baud}`);
          if (!Number.isSafeInteger(frameSize) || frameSize < 512 || frameSize > 16384) {
            throw new RecorderError('CLI_USAGE', '--frame-size must be between 512 and 16384');
          }
          const signedProfile = readInput(opts.profile, 'signed profile');
          const link = await openSerialLink({ path: opts.port, baud, maxPayload: frameSize });
          const bar = new SingleBar({
            format: ' {step} [{bar}] {value}/{total} bytes',
            stream: process.stderr,
            hideCursor: true,
          });
          let barTarget: string | null = null;
          const onProgress = (p: FlashProgress) => {
            if (p.total !== undefined && p.sent !== undefined) {
              if (barTarget !== p.target) {
                if (barTarget) bar.stop();
                bar.start(p.total, p.sent, { step: p.target });
                barTarget = p.target ?? null;
              } else bar.update(p.sent);
              return;
            }
            if (barTarget) bar.stop();
            barTarget = null;
            const label: Record<FlashProgress['step'], string> = {
              hello: 'asking the device who it is',
              csr: 'asking for a certificate request',
              certificate: 'issuing the certificate from the unit CA',
              identity: 'sending the certificate',
              profile: 'sending the profile',
              commit: `device checks and applies the ${p.target ?? 'upload'}`,
              done: p.note ?? 'done',
            };
            process.stderr.write(`recorder flash: ${label[p.step]}\n`);
          };
          try {
            const result = await flashDevice({
              link,
              signedProfile,
              ...(opts.ca
                ? {
                    issueDeviceCertificate: unitCaDeviceIssuer(opts.ca),
                    caCertPem: readCaFile(caDirFiles(opts.ca).caCert),
                  }
                : {}),
              chunkSize: frameSize - 256,
              onProgress,
              reboot: opts.reboot === true,
            });
            if (opts.json) printJson(result);
            else {
              const a = result.after;
              const fp = a.fingerprints as Record<string, string | null>;
              process.stdout.write(
                [
                  `device ${String(a.device)}: identity ${String(a.identity)}, profile version ${String(a.profileVersion)}, ` +
                    `unit ${String(a.unit)}, officers ${(a.officers as string[]).join(', ')}, firmware ${String(a.firmware)}`,
                  `  evidence key ${fp.evidenceKey}`,
                  `  TLS key      ${fp.tlsKey}`,
                  `  unit CA      ${fp.unitCa}`,
                  `  ${result.identityInstalled ? 'certificate installed; ' : ''}${result.profileApplied ? 'profile applied' : 'profile unchanged'}` +
                    (result.resumedBytes ? ` (resumed: ${result.resumedBytes} bytes not sent again)` : ''),
                  '  journal:',
                  ...result.journalTail.map((l) => {
                    const e = JSON.parse(l) as { seq: number; kind: string; body: Record<string, unknown> };
                    return `    ${e.seq} ${e.kind} ${JSON.stringify(e.body).slice(0, 100)}`;
                  }),
                  '',
                ].join('\n'),
              );
            }
            return EXIT_OK;
          } finally {
            if (barTarget) bar.stop();
            await link.close();
          }
        }),
    );
}
