/**
 * `recorder device factory --state DIR --service-port PATH` (issue 7, item 2): a device in
 * maintenance mode, answering the technician's tool on its service port until it is told to
 * reboot into service (or gets SIGINT/SIGTERM).
 */
import type { Command } from 'commander';
import { ServicePort } from '../../device/service-port.ts';
import { statePaths } from '../../device/state-paths.ts';
import { openSerialLink } from '../../hardware/serial-link.ts';
import { EXIT_OK } from '../output.ts';
import { subcommand } from './profile-signing.ts';

export function registerDeviceFactory(
  program: Command,
  run: (action: () => Promise<number>) => Promise<void>,
): void {
  const device = subcommand(program, 'device', 'run the recorder companion on a device');
  device
    .command('factory')
    .description('start a device in maintenance mode, listening on its service port for `recorder flash`')
    .requiredOption('--state <dir>', "the device's state directory")
    .requiredOption('--service-port <path>', 'serial device (USB gadget /dev/ttyGS0; a pty in tests)')
    .option('--baud <n>', 'line rate', '115200')
    .action((opts: { state: string; servicePort: string; baud: string }) =>
      run(async () => {
        const link = await openSerialLink({ path: opts.servicePort, baud: Number(opts.baud) });
        let done!: (reason: string) => void;
        const finished = new Promise<string>((resolve) => (done = resolve));
        const port = await ServicePort.start({
          link,
          paths: statePaths(opts.state),
          onReboot: () => done('rebooting into service'),
          log: (line) => process.stderr.write(`rec:device:service-port ${line}\n`),
        });
        const hello = port.hello();
        process.stdout.write(
          `maintenance mode on ${opts.servicePort}: device ${String(hello.device ?? '(unnumbered)')}, ` +
            `identity ${String(hello.identity)}, profile ${String(hello.profileVersion ?? 'none')}\n`,
        );
        // A pulled cable closes the line (a pty vanishes; a USB gadget hangs up): wait for it to come
        // back and answer again, until a reboot or a signal ends maintenance mode.
        let current = link;
        let ended = false;
        const reconnect = async () => {
          process.stderr.write(
            `rec:device:service-port ${opts.servicePort} closed; waiting for it to come back\n`,
          );
          while (!ended) {
            await new Promise((r) => setTimeout(r, 500));
            try {
              current = await openSerialLink({ path: opts.servicePort, baud: Number(opts.baud) });
            } catch {
              continue;
            }
            if (ended) return void (await current.close());
            port.attach(current);
            current.once('close', () => void reconnect());
            process.stderr.write(`rec:device:service-port ${opts.servicePort} is back\n`);
            return;
          }
        };
        link.once('close', () => void reconnect());
        const onSignal = () => done('stopped by signal');
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const reason = await finished;
        ended = true;
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await port.close();
        await current.close();
        process.stdout.write(`${reason}\n`);
        return EXIT_OK;
      }),
    );
}
