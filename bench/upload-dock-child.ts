/**
 * One recorder of the upload bench's dock, in a process of its own: eight recorders sharing the
 * bench's process measured that process's event loop as much as the gateway.
 *
 * IPC: ← `seal` → `sealed` (its segments written and sealed, and one untimed 1 MiB upload from a
 * second device of the process: a recorder is a long-running process, and a fresh one spent about
 * half of its upload CPU warming up: 6.8–8.2 against 3.4–3.9 CPU s per GiB); ← `upload` → `uploaded` (one round of all it holds, with
 * this process's CPU seconds over it). An upload that fails ends the process with
 * its error on stderr, which the bench sees as the child's exit.
 */
import { benchDevice, heldBytes, upload, type UploadSettings } from './upload-device.ts';
import type { SealedDevice } from '../test/helpers/sealed-device.ts';

export type DockRequest =
  | {
      type: 'seal';
      caDir: string;
      dir: string;
      id: string;
      mib: number;
      items: number;
      /** for the warm-up upload */
      settings: UploadSettings;
    }
  | { type: 'upload'; settings: UploadSettings };

export type DockReply =
  { type: 'sealed'; bytes: number } | { type: 'uploaded'; seconds: number; cpuSeconds: number };

const reply = (m: DockReply) => process.send!(m);
let device: SealedDevice | undefined;

process.on('message', (m: DockRequest) => {
  void (async () => {
    if (m.type === 'seal') {
      await upload(await benchDevice(m.caDir, m.dir, `${m.id}-WARM`, 1), m.settings);
      device = await benchDevice(m.caDir, m.dir, m.id, m.mib, m.items);
      reply({ type: 'sealed', bytes: heldBytes(device) });
    } else if (m.type === 'upload') {
      if (!device) throw new Error('upload before seal');
      const cpu0 = process.cpuUsage();
      const { seconds } = await upload(device, m.settings);
      const { user, system } = process.cpuUsage(cpu0);
      reply({ type: 'uploaded', seconds, cpuSeconds: (user + system) / 1e6 });
    }
  })().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
});
process.on('disconnect', () => process.exit(0));
